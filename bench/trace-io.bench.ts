// Trace I/O throughput: write then read a synthetic trace of N events (default 10M) with a
// realistic mix (allocs with stacks, frees, reallocs, pool lifecycles, rss samples, symbol
// definitions; 4 worker processes with 2 threads each). Baseline measured in the same run:
// the same events as JSON lines (NDJSON), on a 1M-event prefix.
//   npm run bench -- trace-io            (--quick or LSBENCH_EVENTS=2000000 for a quicker run)
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event, EventSink, FastEventSink } from '../src/model/events.js';
import { TraceWriter } from '../src/trace/writer.js';
import { readTrace } from '../src/trace/reader.js';
import { rng } from '../test/support/rng.js';
import { size, startBench } from './support/record.js';

const bench = startBench('trace-io');
const N = size('LSBENCH_EVENTS', 10_000_000, 2_000_000);
const BASE_N = Math.min(N, 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'lstrace-bench-'));
const meta = { format: 1, clock: 'ns' as const, source: 'bench', startWallMs: Date.now() };

/** Calls `emit` for n synthetic events. */
function generate(n: number, emit: (e: Event) => void): void {
  const rand = rng(42);
  const pids = [1001, 1002, 1003, 1004];
  const live: number[][] = pids.map(() => []);
  const pools: number[][] = pids.map(() => []);
  let t = 0;
  let count = 0;
  let nextAddr = 0x5555_0000_0000;
  const STACKS = 2000;
  // Symbol definitions first, per process: 500 frames, 2000 stacks (a trie of depth ~12).
  for (const pid of pids) {
    for (let f = 1; f <= 500 && count < n; f++, count++) {
      emit({ kind: 'frame', pid, t: 0, id: f, frame: { pc: 0x7f12_3400_0000 + f * 0x40, module: '/usr/sbin/nginx', fn: `ngx_fn_${f}`, file: 'src/http/ngx_http_request.c', line: f, inlined: false } });
    }
    for (let s = 1; s <= STACKS && count < n; s++, count++) {
      emit({ kind: 'stack', pid, t: 0, id: s, parent: s > 12 ? s - 12 : 0, frame: 1 + (s % 500) });
    }
  }
  while (count < n) {
    const w = (rand() * 4) | 0;
    const pid = pids[w]!;
    const tid = pid + ((rand() * 2) | 0);
    t += 50 + ((rand() * 2000) | 0);
    const r = rand();
    const mine = live[w]!;
    let e: Event;
    if (r < 0.45 || mine.length === 0) {
      const addr = nextAddr; nextAddr += 16 + ((rand() * 64) | 0) * 16;
      mine.push(addr);
      e = { kind: 'alloc', pid, t, tid, addr, size: 8 + ((rand() * rand() * 8192) | 0), stack: 1 + ((rand() * STACKS) | 0) };
    } else if (r < 0.85) {
      const i = (rand() * mine.length) | 0;
      const addr = mine[i]!; mine[i] = mine[mine.length - 1]!; mine.pop();
      e = { kind: 'free', pid, t, tid, addr };
    } else if (r < 0.90) {
      const i = (rand() * mine.length) | 0;
      const old = mine[i]!; const addr = nextAddr; nextAddr += 4096; mine[i] = addr;
      e = { kind: 'realloc', pid, t, tid, oldAddr: old, addr, size: 4096, stack: 1 + ((rand() * STACKS) | 0) };
    } else {
      const ps = pools[w]!;
      const q = rand();
      if (q < 0.15 || ps.length === 0) {
        const pool = nextAddr; nextAddr += 1024;
        ps.push(pool);
        e = { kind: 'pool-create', pid, t, tid, pool, parent: ps.length > 1 ? ps[0]! : 0, poolKind: 'nginx', tag: 'request', stack: 1 + ((rand() * STACKS) | 0) };
      } else if (q < 0.3 && ps.length > 1) {
        e = { kind: 'pool-destroy', pid, t, pool: ps.pop()!, stack: 0 };
      } else if (q < 0.31) {
        e = { kind: 'rss', pid, t, bytes: 50_000_000 + ((rand() * 1e7) | 0) };
      } else {
        e = { kind: 'pool-alloc', pid, t, tid, pool: ps[ps.length - 1]!, size: 16 + ((rand() * 512) | 0), addr: 0, stack: 0 };
      }
    }
    emit(e);
    count++;
  }
}

function secs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}
const fmt = (x: number) => Math.round(x).toLocaleString('en');

try {
  const path = join(dir, 'bench.lstrace');
  // Generation alone, so it can be subtracted from the write time.
  let t0 = process.hrtime.bigint();
  let sinkCount = 0;
  generate(N, () => { sinkCount++; });
  const genS = secs(t0);

  t0 = process.hrtime.bigint();
  const w = TraceWriter.create(path, meta);
  generate(N, (e) => w.event(e));
  await w.close();
  const writeS = secs(t0) - genS;
  const bytes = statSync(path).size;

  // Decode alone (a sink that only counts), best of two runs (the first includes V8's warm-up)...
  let n = 0;
  let maxT = 0;
  const bare: EventSink = { event(e) { n++; if (e.t > maxT) maxT = e.t; } };
  let readS = Infinity;
  for (let run = 0; run < 2; run++) {
    n = 0;
    t0 = process.hrtime.bigint();
    const r0 = await readTrace(path, bare);
    readS = Math.min(readS, secs(t0));
    if (r0.events !== N || n !== N || r0.warnings.length) throw new Error(`read ${r0.events}/${n} of ${N} events, warnings ${r0.warnings.join('; ')}`);
  }
  // The fast path (FastEventSink, as the engine uses it): direct calls for the commonest
  // records, no Event object; a no-op sink, best of two runs.
  let fastN = 0;
  const fastBare: FastEventSink = {
    event() { fastN++; },
    alloc() { fastN++; }, free() { fastN++; }, realloc() { fastN++; },
    poolAlloc() { fastN++; }, poolCreate() { fastN++; }, poolDestroy() { fastN++; },
  };
  let fastS = Infinity;
  for (let run = 0; run < 2; run++) {
    fastN = 0;
    t0 = process.hrtime.bigint();
    const rf = await readTrace(path, fastBare);
    fastS = Math.min(fastS, secs(t0));
    if (rf.events !== N || fastN !== N) throw new Error(`fast read ${rf.events}/${fastN} of ${N} events`);
  }
  // ...and with a sink that does a little work per event (counts by kind), as a consumer would.
  const counts: Record<string, number> = {};
  const counting: EventSink = { event(e) { counts[e.kind] = (counts[e.kind] ?? 0) + 1; } };
  t0 = process.hrtime.bigint();
  const r = await readTrace(path, counting);
  const countS = secs(t0);

  // Baseline: NDJSON of the first BASE_N events, written and read in the same way.
  const jsonPath = join(dir, 'bench.ndjson');
  const lines: string[] = [];
  t0 = process.hrtime.bigint();
  generate(BASE_N, (e) => lines.push(JSON.stringify(e)));
  writeFileSync(jsonPath, lines.join('\n') + '\n');
  const jsonWriteS = secs(t0) - genS * (BASE_N / N);
  lines.length = 0;
  const jsonBytes = statSync(jsonPath).size;
  t0 = process.hrtime.bigint();
  let jn = 0;
  for (const line of readFileSync(jsonPath, 'utf8').split('\n')) if (line) { JSON.parse(line); jn++; }
  const jsonReadS = secs(t0);
  if (jn !== BASE_N) throw new Error('ndjson count');

  const mix = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(100 * v / N).toFixed(1)}%`).join(', ');
  console.log(`events: ${fmt(N)} (${mix}); chunks: ${r.chunks}; file: ${(bytes / 1e6).toFixed(1)} MB, ${(bytes / N).toFixed(2)} bytes/event`);
  console.log(`write: ${fmt(N / writeS)} events/s, ${(bytes / 1e6 / writeS).toFixed(0)} MB/s (${writeS.toFixed(2)} s, generation ${genS.toFixed(2)} s excluded)`);
  console.log(`read:  ${fmt(N / readS)} events/s, ${(bytes / 1e6 / readS).toFixed(0)} MB/s (${readS.toFixed(2)} s, file read + CRC + decode into Event objects)`);
  console.log(`read, fast path: ${fmt(N / fastS)} events/s (${fastS.toFixed(2)} s, direct calls for alloc/free/realloc/pool records, no Event objects)`);
  console.log(`read + count by kind: ${fmt(N / countS)} events/s (${countS.toFixed(2)} s)`);
  console.log(`baseline NDJSON (${fmt(BASE_N)} events): write ${fmt(BASE_N / jsonWriteS)} events/s, read ${fmt(BASE_N / jsonReadS)} events/s, ${(jsonBytes / BASE_N).toFixed(1)} bytes/event`);
  console.log(`ratios vs NDJSON: write ${((N / writeS) / (BASE_N / jsonWriteS)).toFixed(1)}x, read ${((N / readS) / (BASE_N / jsonReadS)).toFixed(1)}x, size ${((jsonBytes / BASE_N) / (bytes / N)).toFixed(1)}x smaller`);
  void sinkCount;
  bench.finish({
    events: N,
    bytesPerEvent: bytes / N,
    writeEps: N / writeS,
    readEps: N / readS,
    fastReadEps: N / fastS,
    countEps: N / countS,
    ndjson: { events: BASE_N, bytesPerEvent: jsonBytes / BASE_N, writeEps: BASE_N / jsonWriteS, readEps: BASE_N / jsonReadS },
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
