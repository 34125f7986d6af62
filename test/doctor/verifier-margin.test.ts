// Every BPF program of every loader verifies with at least 2x margin under the kernel's limits,
// in every configuration the loader can run with; a rejected program's error gives the
// verifier's reason in one line, and blames permissions only when the kernel refused for them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DoctorReport } from '../../src/doctor/check.js';
import { cliSync } from '../support/cli.js';
import { LOADERS, MARGIN, runVerify, worstPerProgram } from '../../src/doctor/verifier.js';

const root = new URL('../..', import.meta.url).pathname;

/** The programs a loader's skeleton holds (what bpftool generated from the object). */
function skeletonPrograms(part: string): string[] {
  const dir = join(root, 'native', part, 'build');
  const skel = readdirSync(dir).filter((f) => f.endsWith('.skel.h')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  const progs = /struct \{\s*((?:struct bpf_program \*\w+;\s*)+)\} progs;/.exec(skel);
  assert.ok(progs, `a progs struct in ${dir}/*.skel.h`);
  return [...progs[1]!.matchAll(/struct bpf_program \*(\w+);/g)].map((m) => m[1]!).sort();
}

before(() => {
  for (const part of ['bpf', 'luajit', 'unwind']) execFileSync('make', ['-s', '-C', join(root, 'native', part)]);
});

for (const loader of LOADERS) {
  test(`${loader.name}: every program, in every configuration, within ${MARGIN}x of the verifier's limits`, () => {
    const r = runVerify(root, loader);
    assert.equal(r.failed, undefined);
    assert.deepEqual(r.errors, []);
    const programs = skeletonPrograms(loader.part);
    const configs = [...new Set(r.loads.map((l) => l.config))];
    assert.ok(configs.length >= 2, `several configurations verified: ${configs.join(', ')}`);
    for (const c of configs) assert.deepEqual(r.loads.filter((l) => l.config === c).map((l) => l.program).sort(), programs, `programs of config ${c}`);
    for (const l of r.loads) {
      const what = `${l.program} (${l.config})`;
      assert.equal(l.insn_limit, 1_000_000);
      assert.equal(l.stack_limit, 512);
      assert.ok(l.verified_insns > 0 && l.insns > 0, `${what}: counts read from the kernel`);
      assert.ok(l.verified_insns * MARGIN <= l.insn_limit, `${what}: ${l.verified_insns} instructions processed, over half the limit`);
      assert.ok(l.insns * MARGIN <= l.insn_limit, `${what}: ${l.insns} instructions long`);
      assert.ok(l.stack >= 0 && l.stack * MARGIN <= l.stack_limit, `${what}: stack ${l.stack} bytes, over half the limit`);
    }
    // The heaviest configuration of each program is what doctor reports.
    for (const w of worstPerProgram(r.loads)) {
      assert.equal(w.verified_insns, Math.max(...r.loads.filter((l) => l.program === w.program).map((l) => l.verified_insns)));
    }
  });
}

test('doctor lists each loader\'s programs with their verified instruction counts and margin', () => {
  const r = cliSync(['doctor', '--format', 'json']);
  const report = JSON.parse(r.stdout) as DoctorReport;
  for (const loader of LOADERS) {
    const c = report.checks.find((x) => x.id === `verifier-${loader.part}`);
    assert.ok(c, `verifier-${loader.part} check`);
    assert.equal(c.status, 'ok', c.detail);
    for (const p of skeletonPrograms(loader.part)) {
      assert.match(c.detail, new RegExp(`^${p}: [\\d,]+ of 1,000,000 instructions processed \\(\\d+(\\.\\d)?× under the limit`, 'm'));
    }
  }
});

// Programs the verifier rejects (test/programs/bpf-reject.bpf.c), loaded through the same code
// as the loaders (native/common/ls_verify.h).
let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-verifier-'));
  chmodSync(dir, 0o755); // the permission case runs as nobody
  execFileSync('clang', ['-g', '-O2', '-target', 'bpf', '-D__TARGET_ARCH_x86', `-I${join(root, 'native/bpf/build')}`, '-c',
    join(root, 'test/programs/bpf-reject.bpf.c'), '-o', join(dir, 'reject.bpf.o')]);
  execFileSync('cc', ['-O2', '-Wall', `-I${join(root, 'native/common')}`, '-o', join(dir, 'reject'), join(root, 'test/programs/bpf-reject.c'), '-lbpf']);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function reject(prog: string, asUser = false, verify = false): { code: number | null; out: string } {
  const cmd = [join(dir, 'reject'), join(dir, 'reject.bpf.o'), prog, ...(verify ? ['verify'] : [])];
  const r = asUser
    ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { encoding: 'utf8' })
    : spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  return { code: r.status, out: r.stdout };
}

test('a rejected program: the verifier\'s reason in one line (limit, helper, BTF), never permissions', () => {
  const big = reject('too_large');
  assert.equal(big.code, 1);
  assert.match(big.out, /^the kernel's verifier rejected program too_large: BPF program is too large\. Processed 1000001 insn \(the limit is 1000000 processed instructions\)\n$/);
  // The same in a loader's verify mode (statistics log from the start).
  assert.equal(reject('too_large', false, true).out, big.out);
  const helper = reject('bad_helper');
  assert.match(helper.out, /^the kernel's verifier rejected program bad_helper: .*helper bpf_sk_lookup_tcp#\d+\n$/);
  const btf = reject('bad_btf');
  assert.match(btf.out, /^program bad_btf reads what this kernel's BTF does not have .*task_struct___ls_missing\.ls_no_such_field.*\n$/);
  assert.equal(reject('bad_helper', false, true).out, helper.out);
  assert.equal(reject('bad_btf', false, true).out, btf.out);
  for (const r of [big, helper, btf]) assert.doesNotMatch(r.out, /root|CAP_BPF|permission/i);
});

test('a load the kernel refuses for permissions says so', () => {
  const unprivileged = Number(readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8'));
  assert.notEqual(unprivileged, 0, 'this machine lets unprivileged users load BPF: the permission case cannot be provoked');
  const r = reject('bad_helper', true);
  assert.equal(r.code, 1);
  assert.match(r.out, /^Operation not permitted: loading BPF programs needs root \(or CAP_BPF and CAP_PERFMON\)\n$/);
  // The same from a real loader (a copy nobody can run wherever the checkout is).
  copyFileSync(join(root, 'native/luajit/build/lstrace-luajit'), join(dir, 'lstrace-luajit'));
  const lj = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', join(dir, 'lstrace-luajit'), '--pid', String(process.pid)], { encoding: 'utf8' });
  assert.equal(lj.status, 1);
  assert.match(lj.stderr, /"event":"error","message":"Operation not permitted: loading BPF programs needs root/);
});
