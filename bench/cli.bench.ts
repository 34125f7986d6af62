// CLI start-up, as users run it (the built CLI, bench/support/cli.ts): wall time of
// `node -e 0` (the floor: Node alone), `leakscope --help` (commander, no command loaded) and
// `leakscope analyze` of the nginx fixture to JSON (a small real job: sources, engine, analyses,
// report), run after run interleaved so that the machine's load hits all three alike.
// Best and median of RUNS.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCli } from './support/cli.js';
import { root, size, startBench } from './support/record.js';

const bench = startBench('cli');
const RUNS = size('LSBENCH_RUNS', 20, 5);
const dir = mkdtempSync(join(tmpdir(), 'ls-cli-bench-'));
try {
  const main = buildCli(dir);
  const fixture = join(root, 'test/fixtures/nginx-debug.1worker.log.gz');
  const commands: Record<string, string[]> = {
    node: ['-e', '0'],
    help: [main, '--help'],
    analyze: [main, 'analyze', fixture, '--format', 'json'],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (const args of Object.values(commands)) spawnSync(process.execPath, args, { stdio: 'ignore' }); // page cache warm
  for (let i = 0; i < RUNS; i++) {
    for (const [key, args] of Object.entries(commands)) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: '1' } });
      const ms = performance.now() - t0;
      if (r.status !== 0) throw new Error(`${key} failed: ${r.stderr}`);
      times[key]!.push(ms);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [key, xs] of Object.entries(times)) {
    console.log(`${key.padEnd(8)} best ${Math.min(...xs).toFixed(0)} ms, median ${median(xs).toFixed(0)} ms (${RUNS} runs): node ${commands[key]!.map((a) => a.replace(root, '').replace(dir, '<built>')).join(' ')}`);
  }
  bench.finish({ runs: RUNS, ms: times });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
