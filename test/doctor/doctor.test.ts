// `leakscope doctor`: machine checks that agree with what the machine really has, target
// checks that agree with independent tools (readelf) and with how the binaries were built.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DoctorReport } from '../../src/doctor/check.js';
import { cliSync } from '../support/cli.js';

const root = new URL('../..', import.meta.url).pathname;

function doctor(args: string[]): { code: number | null; report: DoctorReport } {
  const r = cliSync(['doctor', ...args, '--format', 'json']);
  return { code: r.code, report: JSON.parse(r.stdout) as DoctorReport };
}
const get = (r: DoctorReport, id: string) => {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `check ${id} in ${r.checks.map((x) => x.id).join(' ')}`);
  return c;
};

let dir = '';
before(() => {
  execFileSync('make', ['-s', '-C', join(root, 'native/unwind')]);
  dir = mkdtempSync(join(tmpdir(), 'ls-doctor-'));
  const src = join(root, 'test/programs/unw-deep.c');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', join(dir, 'nofp'), src]);
  execFileSync('gcc', ['-O2', '-fno-omit-frame-pointer', '-o', join(dir, 'fp'), src]);
  copyFileSync(join(dir, 'nofp'), join(dir, 'stripped'));
  execFileSync('strip', ['--strip-all', join(dir, 'stripped')]);
  execFileSync('gcc', ['-O2', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-Wl,--no-eh-frame-hdr', '-nostartfiles', '-nostdlib', '-static', '-o', join(dir, 'nocfi'), '-x', 'c', '-'], {
    input: 'void _start(void){ for(;;) __asm__ volatile("pause"); }\n',
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('machine checks say what the machine has, and the exit code follows the needed ones', () => {
  const { code, report } = doctor([]);
  assert.equal(get(report, 'root').status, process.getuid!() === 0 ? 'ok' : 'fail');
  assert.equal(get(report, 'btf').status, existsSync('/sys/kernel/btf/vmlinux') ? 'ok' : 'fail');
  assert.equal(get(report, 'uprobes').status, existsSync('/sys/bus/event_source/devices/uprobe') ? 'ok' : 'fail');
  assert.equal(get(report, 'native-unwind').status, 'ok'); // built just above
  assert.equal(get(report, 'tool-addr2line').status, 'ok');
  const needed = report.checks.filter((c) => c.required && c.status === 'fail');
  assert.equal(report.ok, needed.length === 0);
  assert.equal(code, report.ok ? 0 : 1);
});

test('a binary without frame pointers is told apart from one with them', () => {
  const nofp = doctor(['--exe', join(dir, 'nofp')]).report;
  const fp = doctor(['--exe', join(dir, 'fp')]).report;
  assert.match(get(nofp, 'target-frame-pointers').title, /^frame pointers: no /);
  assert.match(get(fp, 'target-frame-pointers').title, /^frame pointers: yes /);
  assert.match(get(doctor(['--exe', '/usr/sbin/nginx']).report, 'target-frame-pointers').title, /^frame pointers: no /);
});

test('symbols, unwind tables and build id agree with readelf', () => {
  const full = doctor(['--exe', join(dir, 'nofp')]).report;
  const stripped = doctor(['--exe', join(dir, 'stripped')]).report;
  assert.equal(get(full, 'target-symbols').status, 'ok');
  assert.match(get(full, 'target-symbols').title, /\d+ in \.symtab/);
  assert.match(get(stripped, 'target-symbols').title, /no \.symtab \(stripped\)/);
  const buildId = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', join(dir, 'nofp')]).toString())![1];
  assert.equal(get(full, 'target-build-id').title, `build id ${buildId}`);
  assert.equal(get(full, 'target-eh-frame').status, 'ok');
  const nocfi = doctor(['--exe', join(dir, 'nocfi')]).report;
  const sections = execFileSync('readelf', ['-S', '-W', join(dir, 'nocfi')]).toString();
  assert.equal(get(nocfi, 'target-eh-frame').status, /\.eh_frame\s/.test(sections) ? 'ok' : 'warn');
  assert.equal(get(nocfi, 'target-eh-frame').status, 'warn');
});

test('allocator profiles: nginx by its exported functions, apr by libapr, LuaJIT named', () => {
  const ngx = doctor(['--exe', '/usr/sbin/nginx']);
  assert.equal(ngx.code, ngx.report.ok ? 0 : 1);
  assert.equal(get(ngx.report, 'profile-nginx').status, 'ok');
  assert.ok(!ngx.report.checks.some((c) => c.id === 'profile-apr'));
  const apache = doctor(['--exe', '/usr/sbin/apache2']).report;
  assert.equal(get(apache, 'profile-apr').status, 'ok');
  assert.ok(!apache.checks.some((c) => c.id === 'profile-nginx'));
  assert.equal(get(doctor(['--exe', '/usr/bin/luajit']).report, 'runtime-libluajit').status, 'info');
});

test('a running process: its executable, libraries and profiles', async (t) => {
  const child = spawn(join(dir, 'nofp'), [], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => child.stdout!.once('data', r));
  const { report } = doctor(['--pid', String(child.pid)]);
  assert.equal(get(report, 'target-process').status, 'ok');
  assert.match(get(report, 'target-process').detail, new RegExp(`runs ${join(dir, 'nofp')}`));
  assert.match(get(report, 'target-frame-pointers').title, /^frame pointers: no /);
  assert.match(get(report, 'target-libraries').title, /files mapped, all with unwind tables/);
  assert.equal(get(report, 'profile-libc').status, 'ok'); // libc.so.6 is mapped
});

test('bad targets: a missing process or a non-program fail the check (exit 1); bad options exit 2', () => {
  const gone = doctor(['--pid', '4194000']); // a pid Linux could give, not running
  assert.equal(gone.code, 1);
  assert.equal(get(gone.report, 'target-process').status, 'fail');
  const text = doctor(['--exe', '/etc/hostname']);
  assert.equal(text.code, 1);
  assert.equal(get(text.report, 'target-elf').detail, 'not an ELF file');
  for (const args of [['--pid', 'abc'], ['--exe', '/no/such/file'], ['--format', 'xml'], ['--pid', '1', '--exe', '/bin/sh']]) {
    const r = cliSync(['doctor', ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^leakscope: /);
  }
});

test('the text report has a ✓/✗ line per check', () => {
  const r = cliSync(['doctor', '--exe', '/usr/sbin/nginx']);
  assert.match(r.stdout, /^System$/m);
  assert.match(r.stdout, /^ {2}✓ BTF: /m);
  assert.match(r.stdout, /^ {2}✓ allocator profile nginx: matches$/m);
  assert.match(r.stdout, /^ {2}· frame pointers: no /m);
  assert.match(r.stdout, /(Everything leakscope needs|Not ready)/);
});
