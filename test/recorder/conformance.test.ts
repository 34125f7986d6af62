// The traced program must not notice the recorder: small C programs that do what servers and
// sandboxes do (tiny thread stacks, unshare/setns, vfork, clone without CLONE_THREAD, signals on
// an alternate stack, longjmp, dlclose then exit, their own allocator, exec with an empty
// environment, 1,000 threads, death by a signal) each run natively and under `leakscope run`,
// twice: the same exit status, the same stdout and the same stderr (but our `leakscope:` lines),
// always. Then the trace says what happened: each program's allocations, in the right process.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { AnalysisResult, ProcessReport, SiteReport } from '../../src/analyses/result.js';
import { allocStacks, buildRecorder, programs, workDir } from './harness.js';
import { cliSync } from '../support/cli.js';

interface Outcome { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

const RUNS = 2;

function compileConf(dir: string, name: string): string {
  const out = join(dir, name);
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-pthread', '-o', out, join(programs, `${name}.c`), '-ldl']);
  return out;
}

function native(cmd: string[]): Outcome {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `leakscope run` with the JSON report in a file (stdout stays the program's). */
function traced(dir: string, tag: string, cmd: string[], env: Record<string, string> = {}): Outcome & { ours: string[]; report: AnalysisResult; trace: string } {
  const trace = join(dir, `${tag}.lstrace`);
  const report = join(dir, `${tag}.json`);
  const r = cliSync(['run', '--format', 'json', '--report', report, '-o', trace, '--', ...cmd], { env });
  const lines = r.stderr.split('\n');
  const ours = lines.filter((l) => l.startsWith('leakscope:'));
  const stderr = lines.filter((l) => !l.startsWith('leakscope:')).join('\n');
  let parsed: AnalysisResult;
  try {
    parsed = JSON.parse(readFileSync(report, 'utf8')) as AnalysisResult;
  } catch {
    throw new Error(`no report from leakscope run (status ${r.code}):\n${r.stderr}`);
  }
  // run exits with its command's status, 128 + N when a signal N ended it.
  return { status: r.code, signal: null, stdout: r.stdout, stderr, ours, report: parsed, trace };
}

/** Runs natively and traced RUNS times each; asserts they agree; returns the last traced run. */
function conform(dir: string, name: string, cmd: string[], env: Record<string, string> = {}): ReturnType<typeof traced> {
  let last: ReturnType<typeof traced> | undefined;
  for (let i = 0; i < RUNS; i++) {
    const n = native(cmd);
    const t = traced(dir, `${name}-${i}`, cmd, env);
    const expectStatus = n.signal ? 128 + signalNumber(n.signal) : n.status;
    assert.equal(t.status, expectStatus, `${name}: exit status natively ${n.status ?? n.signal}, under run ${t.status}\n${t.ours.join('\n')}`);
    assert.equal(t.stdout, n.stdout, `${name}: stdout differs`);
    assert.equal(t.stderr, n.stderr, `${name}: stderr differs`);
    last = t;
  }
  return last!;
}

function signalNumber(sig: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[sig]!;
}

/** Sites whose stack has function `fn` (or a copy gcc made of it: fn.isra.0, fn.constprop.0). */
const sitesOf = (p: ProcessReport, fn: string): SiteReport[] => p.sites.filter((s) => s.stack.some((f) => f.fn === fn || f.fn.startsWith(`${fn}.`)));
const bytesOf = (p: ProcessReport, fn: string): number => sitesOf(p, fn).reduce((a, s) => a + s.bytes, 0);
const countOf = (p: ProcessReport, fn: string): number => sitesOf(p, fn).reduce((a, s) => a + s.count, 0);

describe('traced-program conformance: native and under leakscope run alike', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('conform');
  });

  it('threads on PTHREAD_STACK_MIN stacks, one nearly out of stack, one on a stack of its own', () => {
    const t = conform(dir, 'tinystack', [compileConf(dir, 'conf-tinystack')]);
    const p = t.report.processes[0]!;
    assert.equal(bytesOf(p, 'at_once'), 32);
    assert.equal(bytesOf(p, 'deep'), 48);
    assert.equal(bytesOf(p, 'own_stack'), 64);
  });

  it('unshare(CLONE_NEWUSER) and setns() work as in a single-threaded process; recording goes on after', () => {
    const t = conform(dir, 'unshare', [compileConf(dir, 'conf-unshare')]);
    assert.match(t.stdout, /setns mnt: ok\nunshare user: ok\n/, 'root in a namespace-capable container is needed');
    const p = t.report.processes[0]!;
    assert.equal(countOf(p, 'ns_leak'), 4);
    assert.equal(bytesOf(p, 'ns_leak'), 111 + 222 + 333 + 444);
  });

  it('vfork: a child leaving by _exit does not end the parent\'s recording; a child that execs is traced', () => {
    const t = conform(dir, 'vfork', [compileConf(dir, 'conf-vfork')]);
    const parent = t.report.processes.find((p) => p.command.includes('conf-vfork'))!;
    assert.equal(parent.exitCode, 0, 'the parent\'s own exit, not its vfork child\'s');
    assert.equal(countOf(parent, 'after_vfork'), 6);
    const sh = t.report.processes.find((p) => p.command.startsWith('sh -c'));
    assert.ok(sh, t.report.processes.map((p) => p.command).join(', '));
    assert.equal(sh.ppid, parent.pid);
    assert.ok(sh.allocated.count > 0);
  });

  it('clone() without CLONE_VM is a process of its own in the trace; a CLONE_VM|CLONE_VFORK child runs as natively', () => {
    const t = conform(dir, 'clone', [compileConf(dir, 'conf-clone')]);
    const parent = t.report.processes.find((p) => countOf(p, 'clone_leak') === 3);
    const child = t.report.processes.find((p) => countOf(p, 'clone_leak') === 10);
    assert.ok(parent && child, t.report.processes.map((p) => `${p.pid}: ${p.sites.map((s) => s.label).join(' ')}`).join('\n'));
    assert.notEqual(child.pid, parent.pid);
    assert.equal(child.ppid, parent.pid);
    assert.equal(child.exitCode, 4);
    assert.equal(bytesOf(child, 'clone_leak'), 10 * 96);
  });

  it('signals: dispositions as the program left them, an alternate-stack handler that allocates, siglongjmp out of faults, death by SIGTERM', () => {
    const t = conform(dir, 'signals', [compileConf(dir, 'conf-signals')]);
    assert.match(t.stdout, /SIGUSR2 was default\n/);
    assert.doesNotMatch(t.stdout, /at start: handler/);
    assert.match(t.stdout, /usr2 count: 2\n/);
    const p = t.report.processes[0]!;
    assert.equal(p.exitCode, 128 + 15);
    assert.deepEqual(p.markers, [], 'its own SIGUSR2 handler got the signals');
    assert.ok(t.ours.some((l) => /killed by SIGTERM/.test(l)), t.ours.join('\n'));
  });

  it('death by a signal it sends itself: the same status, said once, and the report knows it ended', () => {
    const exe = compileConf(dir, 'conf-raise');
    for (const [sig, name] of [[11, 'SIGSEGV'], [6, 'SIGABRT'], [9, 'SIGKILL']] as const) {
      const t = conform(dir, `raise-${sig}`, [exe, String(sig)]);
      assert.equal(t.ours.filter((l) => l.includes(`killed by ${name}`)).length, 1, t.ours.join('\n'));
      const p = t.report.processes[0]!;
      assert.equal(p.exited, true, 'not "still running"');
      assert.equal(p.exitCode, 128 + sig);
      // SIGKILL leaves no time to write: the 500 ms flusher may not have run yet.
      if (sig !== 9) assert.equal(countOf(p, 'before_signal'), 10);
    }
  });

  it('setjmp/longjmp out of recursion that allocates', () => {
    const t = conform(dir, 'setjmp', [compileConf(dir, 'conf-setjmp')]);
    assert.equal(countOf(t.report.processes[0]!, 'after_jump'), 200);
  });

  it('dlclose of a library whose code allocated, by an exit handler, while exit() was called under its frame', async () => {
    const lib = join(dir, 'libconf-dl.so');
    execFileSync('gcc', ['-O2', '-g', '-fPIC', '-shared', '-o', lib, join(programs, 'conf-dl-lib.c')]);
    const t = conform(dir, 'dlclose', [compileConf(dir, 'conf-dlclose'), lib], { LEAKSCOPE_SIDE_STACK_REPORT: '1' });
    const p = t.report.processes[0]!;
    assert.equal(p.exitCode, 6);
    // dl_lib_leak: 5 blocks of 300 from main, 10 bytes from each of the 51 dl_lib_run calls; one
    // site (its label), named from the unloaded library's module record.
    const leak = sitesOf(p, 'dl_lib_leak');
    assert.equal(leak.length, 1, leak.map((s) => s.label).join(', '));
    assert.deepEqual([leak[0]!.count, leak[0]!.bytes], [5 + 51, 5 * 300 + 51 * 10]);
    assert.equal(leak[0]!.stack[0]!.module, lib, 'named from the unloaded library\'s module record');
    const allocs = await allocStacks(t.trace);
    const fromMain = allocs.filter((a) => a.frames[0]?.fn === 'dl_lib_leak' && a.frames[1]?.fn === 'main');
    assert.deepEqual(fromMain.map((a) => a.size), [300, 300, 300, 300, 300]);
    for (const a of fromMain) assert.equal(a.frames[0]!.module, lib);
    // Allocations after the unload were recorded, their stacks through the dead frame intact up to it.
    const late = allocs.filter((a) => a.frames.some((f) => f.fn === 'after_unload'));
    assert.ok(late.length >= 21, `${late.length} allocations in the exit handler`);
    for (const a of late) {
      const fns = a.frames.map((f) => f.fn);
      assert.ok(fns.includes('exit') && fns.includes('leave'), fns.join(' < '));
      assert.ok(fns.includes('dl_lib_run'), `the unloaded library's frame is kept: ${fns.join(' < ')}`);
    }
    // The side stack's margin: libunwind used at most half of it.
    const hw = t.ours.map((l) => /side stack high-water (\d+) of (\d+) bytes/.exec(l)).find(Boolean);
    assert.ok(hw, t.ours.join('\n'));
    assert.ok(Number(hw[1]) > 0 && Number(hw[1]) * 2 <= Number(hw[2]), hw[0]);
  });

  it('its own malloc family: nothing reaches the interposed allocator, and run says so', () => {
    const t = conform(dir, 'customalloc', [compileConf(dir, 'conf-customalloc')]);
    assert.ok(t.ours.some((l) => /made no allocation call that the recorder could see: its executable defines malloc itself/.test(l)), t.ours.join('\n'));
    assert.ok(t.report.warnings.some((w) => /defines malloc itself.*leakscope attach --allocator/.test(w)), t.report.warnings.join('\n'));
    assert.equal(t.ours.filter((l) => /made no allocation call/.test(l)).length, 1, t.ours.join('\n'));
  });

  it('exec with an empty and with a cleaned environment: the new program gets exactly that', () => {
    const t = conform(dir, 'execenv', [compileConf(dir, 'conf-execenv')]);
    assert.equal(t.stdout, 'empty environment: exit 0\nPATH=/usr/bin:/bin\nGREETING=hello\ncleaned environment: exit 0\n');
  });

  it('1,000 threads alive at once', () => {
    const t = conform(dir, 'threads', [compileConf(dir, 'conf-threads')]);
    assert.match(t.stdout, /^threads 1000 /);
    const p = t.report.processes[0]!;
    assert.equal(countOf(p, 'worker'), 1000);
    assert.equal(bytesOf(p, 'worker'), 1000 * 24);
  });
});
