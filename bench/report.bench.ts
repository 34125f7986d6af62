// The HTML report on a big trace: generate N events (default 10M) with TraceWriter (4 processes,
// 2,000 stacks of depth ~12 each, allocs/frees with a few leaking stacks, pool lifecycles, RSS,
// three markers), then time in one run:
//   - baseline: readTrace into a sink that only counts (the floor of reading the file),
//   - `report`'s work: analyzeFiles + the window-grid pass + rendering the page,
//   - loading the page in headless Chromium until the charts, flame graph and table are drawn
//     (median of 3), against the same for a 100k-event trace (baseline page).
// Target: the 10M-event page loads in < 3 s.
//   npm run bench -- report            (--quick: 1M events; LSBENCH_EVENTS=N for any size)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Event, TraceMeta } from '../src/model/events.js';
import { frame } from '../src/model/events.js';
import { TraceWriter } from '../src/trace/writer.js';
import { readTrace } from '../src/trace/reader.js';
import { analyzeWithWindow } from '../src/pipeline/window-run.js';
import { htmlReport } from '../src/reports/html/report.js';
import { writeOutputFile } from '../src/io/output-file.js';
import { launch } from '../test/browser/chromium.js';
import { rng } from '../test/support/rng.js';
import { root, size, startBench } from './support/record.js';

const bench = startBench('report');
const N = size('LSBENCH_EVENTS', 10_000_000, 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-report-bench-'));

async function generate(path: string, n: number): Promise<void> {
  const meta: TraceMeta = { format: 1, clock: 'ns', source: 'recorder', startWallMs: Date.now(), command: 'bench-server' };
  const w = TraceWriter.create(path, meta);
  const rand = rng(7);
  const pids = [2001, 2002, 2003, 2004];
  const STACKS = 2000;
  let count = 0;
  const emit = (e: Event) => {
    w.event(e);
    count++;
  };
  for (const pid of pids) {
    emit({ kind: 'process', pid, t: 0, ppid: 1, command: `bench-server worker ${pid}`, exe: '/usr/sbin/bench-server' });
    for (let f = 1; f <= 500; f++) emit({ kind: 'frame', pid, t: 0, id: f, frame: frame({ fn: `fn_${f}`, file: `src/mod${f % 40}.c`, line: f }) });
    // A trie: stack s is frame (s % 500)+1 called from stack floor(s / 8) (depth ~4-5) plus a fixed chain.
    for (let s = 1; s <= STACKS; s++) emit({ kind: 'stack', pid, t: 0, id: s, parent: s < 8 ? 0 : Math.floor(s / 8), frame: (s * 7) % 500 + 1 });
  }
  const live: number[][] = pids.map(() => []);
  const liveStack: Map<number, number>[] = pids.map(() => new Map());
  let addr = 0x5555_0000_0000;
  let t = 1;
  const markers = [0.25, 0.5, 0.75].map((f) => Math.floor(n * f));
  const pools: number[][] = pids.map(() => []);
  while (count < n) {
    t += 1000 + Math.floor(rand() * 1000);
    const pi = Math.floor(rand() * pids.length);
    const pid = pids[pi]!;
    if (markers.length && count >= markers[0]!) {
      emit({ kind: 'marker', pid: 0, t, label: `phase ${4 - markers.length}` });
      markers.shift();
    }
    const r = rand();
    if (r < 0.46) {
      const stack = 1 + Math.floor(rand() * rand() * STACKS);
      const a = addr;
      addr += 64;
      emit({ kind: 'alloc', pid, t, tid: pid, addr: a, size: 16 + Math.floor(rand() * 2000), stack });
      live[pi]!.push(a);
      liveStack[pi]!.set(a, stack);
    } else if (r < 0.9) {
      const l = live[pi]!;
      if (l.length === 0) continue;
      const i = Math.floor(rand() * l.length);
      const a = l[i]!;
      // Stacks divisible by 97 leak: their blocks are never freed.
      if (liveStack[pi]!.get(a)! % 97 === 0) continue;
      l[i] = l[l.length - 1]!;
      l.pop();
      liveStack[pi]!.delete(a);
      emit({ kind: 'free', pid, t, tid: pid, addr: a });
    } else if (r < 0.93) {
      const p = 0x7000_0000 + Math.floor(rand() * 1e6) * 16;
      pools[pi]!.push(p);
      emit({ kind: 'pool-create', pid, t, tid: pid, pool: p, parent: 0, poolKind: 'nginx', tag: `pool-${p % 5}`, stack: 1 + Math.floor(rand() * 50) });
    } else if (r < 0.99) {
      const ps = pools[pi]!;
      if (ps.length === 0) continue;
      emit({ kind: 'pool-alloc', pid, t, tid: pid, pool: ps[ps.length - 1]!, size: 64, addr: 0, stack: 100 + Math.floor(rand() * 50) });
    } else if (r < 0.998) {
      const ps = pools[pi]!;
      // One pool in five is forgotten.
      const p = ps.pop();
      if (p !== undefined && p % 5 !== 0) emit({ kind: 'pool-destroy', pid, t, pool: p, stack: 0 });
    } else {
      emit({ kind: 'rss', pid, t, bytes: 50_000_000 + live[pi]!.length * 600 });
    }
  }
  await w.close();
}

async function loadTimes(file: string, runs: number): Promise<number[]> {
  const { browser, close } = await launch();
  const out: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const p = await browser.newPage();
      p.on('pageerror', (e) => console.error(`page error: ${e.message}`));
      const t0 = performance.now();
      await p.goto(pathToFileURL(file).href, { waitUntil: 'load' });
      // The page draws synchronously and sets __leakscope last; then wait for two frames so
      // that the drawing has been painted.
      await p.waitForFunction(() => (window as any).__leakscope !== undefined, undefined, { timeout: 60_000 });
      await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      out.push(performance.now() - t0);
      await p.close();
    }
  } finally {
    await close();
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

try {
  const big = join(dir, 'big.lstrace');
  const small = join(dir, 'small.lstrace');
  let t = performance.now();
  await generate(big, N);
  await generate(small, 100_000);
  console.log(`generated ${N.toLocaleString('en')} events, ${(statSync(big).size / 1e6).toFixed(1)} MB in ${fmt(performance.now() - t)}`);

  t = performance.now();
  let seen = 0;
  await readTrace(big, { event: () => { seen++; } });
  const readMs = performance.now() - t;
  console.log(`baseline readTrace (count only): ${fmt(readMs)} (${(seen / readMs / 1000).toFixed(2)}M events/s)`);

  t = performance.now();
  const run = await analyzeWithWindow([big]);
  const analyzeMs = performance.now() - t;
  t = performance.now();
  const bigHtml = join(dir, 'big.html');
  const page = await htmlReport(run.result!, run.window);
  writeOutputFile(bigHtml, page);
  const bytes = Buffer.byteLength(page);
  const renderMs = performance.now() - t;
  console.log(`report: analyze + window pass ${fmt(analyzeMs)} (${(analyzeMs / readMs).toFixed(1)}x the read), page render ${fmt(renderMs)}, page ${(bytes / 1024 / 1024).toFixed(2)} MiB`);
  const stacks = run.window.processes.reduce((a, p) => a + p.stacks.size, 0);
  const cells = run.window.processes.reduce((a, p) => a + p.cells.length, 0);
  console.log(`grid: ${run.window.buckets} buckets of ${(run.window.width / 1e6).toFixed(1)} ms, ${cells.toLocaleString('en')} cells, ${stacks} stacks over ${run.window.processes.length} processes`);

  const smallRun = await analyzeWithWindow([small]);
  const smallHtml = join(dir, 'small.html');
  writeOutputFile(smallHtml, await htmlReport(smallRun.result!, smallRun.window));
  const smallLoad = await loadTimes(smallHtml, 3);
  const bigLoad = await loadTimes(bigHtml, 3);
  console.log(`page load (headless Chromium, median of 3): 100k-event page ${fmt(median(smallLoad))}, ${N.toLocaleString('en')}-event page ${fmt(median(bigLoad))} ` +
    `(${(median(bigLoad) / median(smallLoad)).toFixed(2)}x the small page) — runs ${bigLoad.map((x) => fmt(x)).join(', ')}`);
  console.log(median(bigLoad) < 3000 ? 'OK: loads in under 3 s' : 'SLOW: over the 3 s target');
  // The real APR pool-debug fixture's page (the browser test's input; its load time is
  // measured here, not asserted in a test).
  const aprRun = await analyzeWithWindow([join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz')]);
  const aprHtml = join(dir, 'apr.html');
  writeOutputFile(aprHtml, await htmlReport(aprRun.result!, aprRun.window));
  const aprLoad = await loadTimes(aprHtml, 3);
  console.log(`page load, APR pool-debug fixture: ${fmt(median(aprLoad))} median of 3 — runs ${aprLoad.map((x) => fmt(x)).join(', ')}`);
  bench.finish({
    events: N,
    readS: readMs / 1000,
    analyzeS: analyzeMs / 1000,
    renderS: renderMs / 1000,
    pageMiB: bytes / 1024 / 1024,
    loadS: { big: bigLoad.map((x) => x / 1000), small: smallLoad.map((x) => x / 1000), aprFixture: aprLoad.map((x) => x / 1000) },
  });
} finally {
  if (!process.env.LSBENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}
