// What the traced-program safety pass of the recorder (side-stack walks, stack bounds, live-module
// checks; commits cb6eb72..0f9f23f) costs, against the library as it was before it (LSBENCH_BASE,
// by default 735dc3a, built here from that commit's native/recorder):
// - instructions of the whole process (valgrind's callgrind) on rec-bench, native, under each
//   library with full stacks and with --sample 524288: steady on a loaded machine, where the
//   times of bench/recorder.bench.ts are not;
// - the stack an allocation takes below its caller (test/programs/rec-stackuse.c), natively and
//   under `leakscope run` with each library: what a thread with a small stack has to spare.
//   npm run bench -- safety        (LSBENCH_SAFETY_ROUNDS: rec-bench rounds, 300,000; --quick 50,000)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { size, startBench } from './support/record.js';

const root = new URL('..', import.meta.url).pathname;
const bench = startBench('safety');
const BASE = process.env.LSBENCH_BASE || '735dc3a';
const ROUNDS = size('LSBENCH_SAFETY_ROUNDS', 300_000, 50_000);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-safetybench-'));

try {
  execFileSync('make', ['-s', '-C', join(root, 'native', 'recorder')], { stdio: 'inherit' });
  const current = join(root, 'native', 'recorder', 'build', 'libleakscope.so');
  // The base library from its commit's sources, as they were (no checkout of the worktree).
  const baseSrc = join(dir, 'base');
  mkdirSync(baseSrc);
  const baseCommit = execFileSync('git', ['rev-parse', '--short=10', BASE], { cwd: root, encoding: 'utf8' }).trim();
  const archive = execFileSync('git', ['archive', baseCommit, 'native/recorder'], { cwd: root, maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', baseSrc], { input: archive });
  execFileSync('make', ['-s', '-C', join(baseSrc, 'native', 'recorder')], { stdio: 'inherit' });
  const base = join(baseSrc, 'native', 'recorder', 'build', 'libleakscope.so');

  const exe = join(dir, 'rec-bench');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-pthread', '-o', exe, join(root, 'test', 'programs', 'rec-bench.c')]);

  /** Instructions of the whole process tree (callgrind counts every process it follows). */
  let calls = 0;
  const instructions = (env: string[], name: string): number => {
    const out = join(dir, `cg-${name}.%p.out`);
    const r = spawnSync('valgrind', ['--tool=callgrind', '--trace-children=yes', `--callgrind-out-file=${out}`, 'env', ...env, exe, '1', String(ROUNDS)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`callgrind ${name} failed (${r.status}): ${r.stderr.slice(-1000)}`);
    calls = Number(/rec-bench calls=(\d+)/.exec(r.stderr)?.[1] ?? calls);
    let total = 0;
    for (const f of readdirSync(dir).filter((x) => x.startsWith(`cg-${name}.`))) {
      const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
      if (m) total += Number(m[1]);
    }
    if (!total) throw new Error(`callgrind ${name}: no instruction count in its output`);
    return total;
  };
  const traced = (lib: string, name: string, sample?: number): number =>
    instructions([`LD_PRELOAD=${lib}`, `LEAKSCOPE_TRACE=${join(dir, `${name}.lstrace`)}`, ...(sample ? [`LEAKSCOPE_SAMPLE=${sample}`] : [])], name);

  const native = instructions([], 'native');
  const before = { full: traced(base, 'base-full'), sampled: traced(base, 'base-sampled', 524288) };
  const after = { full: traced(current, 'full'), sampled: traced(current, 'sampled', 524288) };
  const M = (x: number) => `${(x / 1e6).toFixed(1)}M`;
  console.log(`callgrind, rec-bench ${ROUNDS} rounds (${calls} allocation calls), whole process; native ${M(native)} instructions`);
  console.log(`  full stacks:       ${BASE} ${M(before.full)} → now ${M(after.full)} (${((after.full / before.full - 1) * 100).toFixed(2)}%)`);
  console.log(`  --sample 524288:   ${BASE} ${M(before.sampled)} → now ${M(after.sampled)} (${((after.sampled / before.sampled - 1) * 100).toFixed(2)}%)`);

  // Stack below malloc's caller, on a thread's first recorded call and the deepest of 100 later.
  const stackuse = join(dir, 'rec-stackuse');
  execFileSync('gcc', ['-O2', '-g', '-pthread', '-o', stackuse, join(root, 'test', 'programs', 'rec-stackuse.c')]);
  const built = join(root, 'dist', 'cli', 'main.js');
  const cli = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];
  const su = (cmd: string[], env: NodeJS.ProcessEnv = {}): { first: number; later: number } => {
    const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
    const m = /rec-stackuse first=(\d+) later=(\d+)/.exec(r.stdout);
    if (r.status !== 0 || !m) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.slice(-1000)}`);
    return { first: Number(m[1]), later: Number(m[2]) };
  };
  const run = (lib: string, name: string) =>
    su([process.execPath, ...cli, 'run', '--no-summary', '-o', join(dir, `${name}.lstrace`), '--', stackuse], { LEAKSCOPE_LIB: lib });
  const stack = { native: su([stackuse]), before: run(base, 'su-base'), after: run(current, 'su') };
  console.log(`stack below malloc's caller (first call / deepest later): native ${stack.native.first} / ${stack.native.later} B; ` +
    `${BASE} ${stack.before.first} / ${stack.before.later} B; now ${stack.after.first} / ${stack.after.later} B`);

  bench.finish({ base: baseCommit, rounds: ROUNDS, calls, instructions: { native, before, after }, stackBytes: stack });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
