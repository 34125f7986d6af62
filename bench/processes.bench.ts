// Cost per process: a trace of many processes (a forking server's short-lived children, or a
// hostile trace) through `analyze --format json` and `report`, each in a child process of its
// own, with its wall time and peak RSS. Two shapes of N processes (default 20,000):
// - lifecycle: each process only starts, forks its successor and exits (no data);
// - one-alloc: each process also allocates one block (a little data).
//   npm run bench -- processes        (LSBENCH_PROCS=200000 for the 200,000-process case)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceWriter } from '../src/trace/writer.js';
import { root, size, startBench, type Figure } from './support/record.js';

const bench = startBench('processes');
const N = size('LSBENCH_PROCS', 20_000, 2_000);
const dir = mkdtempSync(join(tmpdir(), 'ls-bench-procs-'));
const probe = `data:text/javascript,${encodeURIComponent(
  "process.on('exit', () => process.stderr.write(`\\nLSBENCH_RSS ${process.resourceUsage().maxRSS}\\n`));",
)}`;

function write(path: string, alloc: boolean, n = N): void {
  const w = TraceWriter.create(path, { format: 1, clock: 'ns', source: 'bench', startWallMs: Date.now() });
  for (let i = 0; i < n; i++) {
    const pid = 1000 + i;
    if (i > 0) w.event({ kind: 'fork', pid, t: i * 10, parentPid: pid - 1 });
    else w.event({ kind: 'process', pid, t: 0, ppid: 1, command: 'server', exe: '/usr/sbin/server' });
    if (alloc) w.event({ kind: 'alloc', pid, t: i * 10 + 1, tid: pid, addr: 0x10000 + i * 64, size: 48, stack: 0 });
    w.event({ kind: 'exit', pid, t: i * 10 + 2, code: 0 });
  }
  void w.close();
}

function run(args: string[]): { s: number; mb: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', probe, join(root, 'src/cli/main.ts'), ...args], {
    cwd: root, encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, CI: '1' },
  });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(0, 500)}`);
  const m = /LSBENCH_RSS (\d+)/.exec(r.stderr);
  return { s, mb: Number(m?.[1] ?? 0) / 1024 };
}

try {
  console.log(`${N.toLocaleString('en')} processes (a fork chain), each command in a child process of its own`);
  write(join(dir, 'one.lstrace'), true, 1);
  const base = run(['analyze', '--format', 'json', join(dir, 'one.lstrace')]);
  console.log(`baseline (1 process): analyze ${base.s.toFixed(1)} s, peak RSS ${base.mb.toFixed(0)} MB`);
  const shapes: Figure[] = [];
  for (const [shape, alloc] of [['lifecycle', false], ['one-alloc', true]] as const) {
    const trace = join(dir, `${shape}.lstrace`);
    write(trace, alloc);
    const a = run(['analyze', '--format', 'json', trace]);
    const h = run(['report', trace, '-o', join(dir, `${shape}.html`)]);
    console.log(`${shape.padEnd(10)} analyze --format json: ${a.s.toFixed(1)} s, peak RSS ${a.mb.toFixed(0)} MB (${(((a.mb - base.mb) * 1024) / N).toFixed(1)} KB per process above the baseline); report: ${h.s.toFixed(1)} s, peak RSS ${h.mb.toFixed(0)} MB`);
    shapes.push({ shape, analyze: a, report: h });
  }
  bench.finish({ procs: N, baseline: base, shapes });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
