// A packed install, as a user gets it: `npm pack` of this tree, then `npm install -g` of the
// tarball into a temporary prefix. With the toolchain, the install builds the native parts and
// `leakscope doctor`, `run` and `analyze` work from the install. Without one of the build
// packages (libbpf's headers hidden in a private mount namespace, so nothing else on the machine
// notices), the install still succeeds, builds what it can, says in one line what is missing,
// `doctor` says the same, a command needing the missing part says it too, and analysis of files
// works.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { DoctorReport } from '../../src/doctor/check.js';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { testDir } from '../support/tmp.js';

const root = new URL('../..', import.meta.url).pathname;
const fixture = join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz');
let dir = '';
let tarball = '';

/** Runs argv, hiding the BPF headers (libbpf-dev) in a private mount namespace when `hide`. */
function sh(argv: string[], opts: { hide?: boolean; cwd?: string } = {}): SpawnSyncReturns<string> {
  const cmd = opts.hide
    ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /usr/include/bpf && exec "$@"', 'sh', ...argv]
    : argv;
  return spawnSync(cmd[0]!, cmd.slice(1), { cwd: opts.cwd ?? dir, encoding: 'utf8', timeout: 600_000 });
}

function install(prefix: string, hide: boolean): SpawnSyncReturns<string> {
  // --foreground-scripts: the install step's own output is shown, as a user sees it with it.
  return sh(['npm', 'install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--allow-scripts=leakscope',
    '--foreground-scripts', tarball], { hide });
}

const bin = (prefix: string) => join(prefix, 'bin', 'leakscope');
const pkgDir = (prefix: string) => join(prefix, 'lib', 'node_modules', 'leakscope');

before(() => {
  dir = testDir('ls-packed');
  // Pack a copy of the tree (its prepare step rebuilds dist/, which the tree's own must not see
  // change under other tests).
  const copy = join(dir, 'tree');
  for (const p of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'src', 'web', 'scripts', 'native', 'profiles', 'docs']) {
    cpSync(join(root, p), join(copy, p), { recursive: true, filter: (src) => !/\/native\/[^/]+\/build$/.test(src) });
  }
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  const packed = spawnSync('npm', ['pack', '--pack-destination', dir], { cwd: copy, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
});

test('the tarball holds what an install needs, and no build output', () => {
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const f of ['dist/cli/main.js', 'dist/web/report.js', 'scripts/build-native.mjs', 'scripts/system-packages.mjs', 'scripts/debian-packages.txt',
    'native/common/ls_verify.h', 'native/bpf/Makefile', 'profiles/allocators/nginx.json']) {
    assert.ok(files.includes(`package/${f}`), `package/${f} in the tarball`);
  }
  assert.deepEqual(files.filter((f) => /^package\/native\/[^/]+\/build\//.test(f)), []);
  assert.deepEqual(files.filter((f) => f.startsWith('package/test/') || f.startsWith('package/src/')), []);
});

test('with the toolchain: the install builds the native parts; doctor, run and analyze work from it', () => {
  const prefix = join(dir, 'full');
  const r = install(prefix, false);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /leakscope: not built/);
  for (const f of ['bpf/build/leakscope-bpf', 'luajit/build/lstrace-luajit', 'recorder/build/libleakscope.so', 'unwind/build/libleakscope-unwind.so', 'unwind/build/ls-kstack']) {
    assert.ok(existsSync(join(pkgDir(prefix), 'native', f)), `native/${f} built at install`);
  }
  const doc = sh([bin(prefix), 'doctor', '--format', 'json']);
  const report = JSON.parse(doc.stdout) as DoctorReport;
  assert.equal(doc.status, 0, doc.stdout);
  assert.ok(report.ok);
  for (const id of ['native-bpf', 'native-luajit', 'native-recorder', 'native-unwind', 'verifier-bpf', 'verifier-luajit', 'verifier-unwind', 'packages-build']) {
    assert.equal(report.checks.find((c) => c.id === id)?.status, 'ok', id);
  }
  const trace = join(dir, 'true.lstrace');
  const run = sh([bin(prefix), 'run', '--no-summary', '-o', trace, '--', '/bin/true']);
  assert.equal(run.status, 0, run.stderr);
  const traced = JSON.parse(sh([bin(prefix), 'analyze', '--format', 'json', trace]).stdout) as AnalysisResult;
  assert.equal(traced.processes.length, 1);
  assert.match(traced.processes[0]!.command ?? '', /\/bin\/true/);
  const an = sh([bin(prefix), 'analyze', '--format', 'json', fixture]);
  assert.equal(an.status, 0, an.stderr);
  const res = JSON.parse(an.stdout) as AnalysisResult;
  const pchild = res.processes.flatMap((p) => p.poolClasses).find((c) => c.name === 'pchild');
  assert.equal(pchild?.verdict.verdict, 'leak', 'the fixture child\'s leaking pool class found');
});

test('without libbpf-dev: the install succeeds, says in one line what is missing, doctor says the same, analysis works', () => {
  const prefix = join(dir, 'nobpf');
  const r = install(prefix, true);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('leakscope:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^leakscope: not built: native\/bpf \(missing libbpf-dev\); native\/luajit \(missing libbpf-dev\); native\/unwind\/kstack \(missing libbpf-dev\)\. Install them with 'apt-get install -y libbpf-dev', then run 'npm rebuild -g leakscope'/);
  assert.match(lines[0]!, /the commands that read files \(analyze, report, export, diff, info\) work/);
  const native = join(pkgDir(prefix), 'native');
  assert.ok(existsSync(join(native, 'recorder/build/libleakscope.so')), 'the recorder needs no libbpf: built');
  assert.ok(existsSync(join(native, 'unwind/build/libleakscope-unwind.so')), 'the unwinder needs no libbpf: built');
  assert.ok(!existsSync(join(native, 'bpf/build/leakscope-bpf')));
  assert.ok(!existsSync(join(native, 'unwind/build/ls-kstack')));

  const doc = sh([bin(prefix), 'doctor', '--format', 'json'], { hide: true });
  const report = JSON.parse(doc.stdout) as DoctorReport;
  assert.equal(doc.status, 1, 'attach cannot work: doctor says not ready');
  const get = (id: string) => report.checks.find((c) => c.id === id);
  assert.equal(get('native-bpf')?.status, 'fail');
  assert.equal(get('native-bpf')?.title, 'native/bpf: not built: missing libbpf-dev');
  assert.equal(get('native-bpf')?.fix, 'apt-get install -y libbpf-dev, then npm rebuild -g leakscope');
  assert.equal(get('native-luajit')?.title, 'native/luajit: not built: missing libbpf-dev');
  assert.equal(get('native-unwind-ls-kstack')?.title, 'native/unwind: ls-kstack not built: missing libbpf-dev');
  assert.equal(get('packages-build')?.title, 'build packages: missing libbpf-dev');
  assert.equal(get('native-recorder')?.status, 'ok');

  const lj = sh([bin(prefix), 'attach', '--pid', String(process.pid), '--allocator', 'luajit', '--duration', '1s'], { hide: true });
  assert.notEqual(lj.status, 0);
  const err = lj.stderr.trim().split('\n').filter((l) => /not built/.test(l));
  assert.equal(err.length, 1, lj.stderr);
  assert.match(err[0]!, /^leakscope: the LuaJIT tracer is not built .*: this machine lacks libbpf-dev: apt-get install -y libbpf-dev, then npm rebuild -g leakscope$/);

  const an = sh([bin(prefix), 'analyze', '--format', 'json', fixture]);
  assert.equal(an.status, 0, an.stderr);
  assert.ok((JSON.parse(an.stdout) as AnalysisResult).processes.length > 0);
  const run = sh([bin(prefix), 'run', '--no-summary', '-o', join(dir, 'nobpf.lstrace'), '--', '/bin/true']);
  assert.equal(run.status, 0, `run needs only the recorder: ${run.stderr}`);
});
