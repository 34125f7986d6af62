// The in-process recorder's cost, in one run, on a malloc-heavy C program (test/programs/
// rec-bench.c: ITERS rounds of free + malloc from 10-13 frame deep stacks, 6M allocation calls
// by default): native, `leakscope run` (full stacks), `leakscope run --sample 524288`,
// heaptrack, valgrind memcheck, each as a ratio to native; then 1 vs 4 threads per-call cost
// under `leakscope run`.
//
// Three measures per tool, all against native measured in the same run:
// - work CPU: the program's own CPU time for its allocation loop (CLOCK_PROCESS_CPUTIME_ID,
//   every thread): what the tool costs inside the process;
// - total CPU: CPU of the whole command and its children (heaptrack's interpreter, our
//   symbolization), from the kernel's child accounting;
// - wall: the whole command, start to exit (noisy on a loaded machine).
//   npm run bench -- recorder        (LSBENCH_ITERS=1000000 for a shorter run; --quick: 300k)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { size, startBench } from './support/record.js';

const root = new URL('..', import.meta.url).pathname;
const bench = startBench('recorder');
const ITERS = size('LSBENCH_ITERS', 3_000_000, 300_000);
const THREAD_ITERS = size('LSBENCH_THREAD_ITERS', 1_000_000, 100_000);
const REPEAT = size('LSBENCH_REPEAT', 3, 1);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-recbench-'));

execFileSync('make', ['-s', '-C', join(root, 'native', 'recorder')], { stdio: 'inherit' });
const exe = join(dir, 'rec-bench');
execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-pthread', '-o', exe, join(root, 'test', 'programs', 'rec-bench.c')]);

// The CLI as users run it: the built one when present (no TypeScript compile at start-up).
const built = join(root, 'dist', 'cli', 'main.js');
const cli = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];
const leakscope = (args: string[]): string[] => [process.execPath, ...cli, ...args];

function childCpuMs(): number {
  // utime, stime, cutime, cstime are fields 14-17 of /proc/self/stat, in clock ticks (100 Hz).
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

interface Measure { wallMs: number; totalCpuMs: number; workCpuMs: number; workWallMs: number; calls: number }

function measure(cmd: string[]): Measure {
  const c0 = childCpuMs();
  const t0 = performance.now();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const wallMs = performance.now() - t0;
  const totalCpuMs = childCpuMs() - c0;
  const m = /rec-bench calls=(\d+) cpu_ns=(\d+) wall_ns=(\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return { wallMs, totalCpuMs, workCpuMs: Number(m[2]) / 1e6, workWallMs: Number(m[3]) / 1e6, calls: Number(m[1]) };
}

function median(ms: Measure[]): Measure {
  const pick = (k: keyof Measure): number => [...ms.map((m) => m[k])].sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  return { wallMs: pick('wallMs'), totalCpuMs: pick('totalCpuMs'), workCpuMs: pick('workCpuMs'), workWallMs: pick('workWallMs'), calls: ms[0]!.calls };
}

function repeat(cmd: () => string[], n: number): Measure {
  const out: Measure[] = [];
  for (let i = 0; i < n; i++) out.push(measure(cmd()));
  return median(out);
}

function has(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

const trace = (name: string): string => join(dir, `${name}.lstrace`);

// Instructions (callgrind) and the stack an allocation takes, against the recorder before its
// safety pass: bench/safety.bench.ts.
const args = [exe, '1', String(ITERS)];
console.log(`rec-bench: 1 thread, ${ITERS} rounds (${(ITERS * 2 / 1e6).toFixed(1)}M allocation calls), median of ${REPEAT}; CLI ${cli[0] === built ? 'dist' : 'tsx'}`);

const rows: [string, Measure][] = [];
const native = repeat(() => args, REPEAT);
rows.push(['native', native]);
rows.push(['leakscope run (full stacks)', repeat(() => { rmSync(trace('full'), { force: true }); return leakscope(['run', '--no-summary', '-o', trace('full'), '--', ...args]); }, REPEAT)]);
const traceBytes = statSync(trace('full')).size;
rows.push(['leakscope run --sample 524288', repeat(() => { rmSync(trace('sampled'), { force: true }); return leakscope(['run', '--no-summary', '--sample', '524288', '-o', trace('sampled'), '--', ...args]); }, REPEAT)]);
if (has('heaptrack')) rows.push(['heaptrack', repeat(() => ['heaptrack', '-o', join(dir, 'ht'), ...args], Math.min(REPEAT, 2))]);
else console.log('heaptrack: not installed, skipped');
if (has('valgrind')) rows.push(['valgrind --tool=memcheck', measure(['valgrind', '--tool=memcheck', '--leak-check=full', '-q', ...args])]);
else console.log('valgrind: not installed, skipped');

const r = (x: number, base: number): string => `${(x / base).toFixed(2)}x`;
console.log('\n| tool | work CPU ms | ratio | total CPU ms | ratio | wall ms | ratio |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, m] of rows) {
  console.log(`| ${name} | ${m.workCpuMs.toFixed(0)} | ${r(m.workCpuMs, native.workCpuMs)} | ${m.totalCpuMs.toFixed(0)} | ${r(m.totalCpuMs, native.totalCpuMs)} | ${m.wallMs.toFixed(0)} | ${r(m.wallMs, native.wallMs)} |`);
}
console.log(`\nfull-stack trace: ${(traceBytes / 1e6).toFixed(1)} MB, ${(traceBytes / native.calls).toFixed(1)} bytes per allocation call`);

// Threads: per-call cost (work CPU / calls) under the recorder, 1 vs 4 threads.
const perCall = (m: Measure): number => (m.workCpuMs * 1e6) / m.calls;
const t1 = repeat(() => { rmSync(trace('t1'), { force: true }); return leakscope(['run', '--no-summary', '-o', trace('t1'), '--', exe, '1', String(THREAD_ITERS)]); }, REPEAT);
const t4 = repeat(() => { rmSync(trace('t4'), { force: true }); return leakscope(['run', '--no-summary', '-o', trace('t4'), '--', exe, '4', String(THREAD_ITERS)]); }, REPEAT);
const n1 = repeat(() => [exe, '1', String(THREAD_ITERS)], REPEAT);
const n4 = repeat(() => [exe, '4', String(THREAD_ITERS)], REPEAT);
console.log(`\nper-call cost (work CPU / allocation calls), ${THREAD_ITERS} rounds per thread:`);
console.log(`  native     1 thread ${perCall(n1).toFixed(1)} ns, 4 threads ${perCall(n4).toFixed(1)} ns (${r(perCall(n4), perCall(n1))})`);
console.log(`  leakscope  1 thread ${perCall(t1).toFixed(1)} ns, 4 threads ${perCall(t4).toFixed(1)} ns (${r(perCall(t4), perCall(t1))})`);

// Stack taken below the allocating function: the recorder's frames stay small and its unwinding
// runs on a side stack, so threads with small stacks allocate as they do natively.
const stackuse = join(dir, 'rec-stackuse');
execFileSync('gcc', ['-O2', '-g', '-pthread', '-o', stackuse, join(root, 'test', 'programs', 'rec-stackuse.c')]);
const su = (cmd: string[]): { first: number; later: number } => {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  const m = /rec-stackuse first=(\d+) later=(\d+)/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.slice(-1000)}`);
  return { first: Number(m[1]), later: Number(m[2]) };
};
const stack = { native: su([stackuse]), run: su(leakscope(['run', '--no-summary', '-o', trace('su'), '--', stackuse])) };
console.log(`\nstack below malloc's caller (rec-stackuse), first call / deepest later: native ${stack.native.first} / ${stack.native.later} B; leakscope run ${stack.run.first} / ${stack.run.later} B`);

const full = rows[1]![1], sampled = rows[2]![1], ht = rows.find(([n]) => n === 'heaptrack')?.[1];
console.log('\ntargets:');
if (ht) {
  for (const k of ['workCpuMs', 'totalCpuMs', 'wallMs'] as const) {
    const ours = full[k] / native[k], theirs = ht[k] / native[k];
    console.log(`  full stacks <= half heaptrack's ratio (${k}): ${ours.toFixed(2)} vs ${theirs.toFixed(2)}/2 = ${(theirs / 2).toFixed(2)}: ${ours <= theirs / 2 ? 'met' : 'NOT met'}`);
  }
}
console.log(`  sampled <= 1.2x native (work CPU): ${r(sampled.workCpuMs, native.workCpuMs)}: ${sampled.workCpuMs / native.workCpuMs <= 1.2 ? 'met' : 'NOT met'}; the whole command's wall time ${r(sampled.wallMs, native.wallMs)} (symbols resolved after the run)`);
console.log(`  4-thread per-call <= 1.5x 1-thread: ${r(perCall(t4), perCall(t1))}: ${perCall(t4) / perCall(t1) <= 1.5 ? 'met' : 'NOT met'}`);
const KEYS: Record<string, string> = { native: 'native', 'leakscope run (full stacks)': 'run', 'leakscope run --sample 524288': 'sample', heaptrack: 'heaptrack', 'valgrind --tool=memcheck': 'valgrind' };
const m = (x: Measure) => ({ workCpuMs: x.workCpuMs, totalCpuMs: x.totalCpuMs, wallMs: x.wallMs });
bench.finish({
  iterations: ITERS,
  calls: native.calls,
  repeat: REPEAT,
  // Keys by tool: native, run (full stacks), sample (--sample 524288), heaptrack, valgrind.
  tools: Object.fromEntries(rows.map(([name, x]) => [KEYS[name] ?? name, m(x)])),
  traceBytesPerCall: traceBytes / native.calls,
  stackBytes: stack,
  threads: { iterations: THREAD_ITERS, native1Ns: perCall(n1), native4Ns: perCall(n4), run1Ns: perCall(t1), run4Ns: perCall(t4) },
});
rmSync(dir, { recursive: true, force: true });
