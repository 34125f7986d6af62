// The reader's fast path (FastEventSink: direct calls, no Event object) must give exactly what
// the object path gives: the same events at the decoder, the same engine state and analysis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Event, EventSink, FastEventSink, TraceMeta } from '../../src/model/events.js';
import { fastSink } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import { foldFiles } from '../../src/pipeline/analyze-files.js';
import { readInputs } from '../../src/sources/open.js';
import { eventsArb } from '../trace/arbitrary-events.js';

const dir = mkdtempSync(join(tmpdir(), 'ls-fastpath-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Records fast calls back as the events they stand for. Written apart from decode.ts's
 *  ObjectSink on purpose: a plain sink's events come through ObjectSink, so building this from
 *  it would compare ObjectSink with itself. */
class Recorder implements FastEventSink {
  got: Event[] = [];
  event(e: Event): void { this.got.push(e); }
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    this.got.push({ kind: 'alloc', pid, t, tid, addr, size, stack });
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    this.got.push({ kind: 'free', pid, t, tid, addr });
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.got.push({ kind: 'realloc', pid, t, tid, oldAddr, addr, size, stack });
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    this.got.push({ kind: 'pool-alloc', pid, t, tid, pool, size, addr, stack });
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    this.got.push({ kind: 'pool-create', pid, t, tid, pool, parent, poolKind, tag, stack });
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    this.got.push({ kind: 'pool-destroy', pid, t, pool, stack });
  }
}

// Events that interact: few processes, addresses, pools and stacks, so that frees, reallocs,
// destroys and clears find what they name (and sometimes do not).
const pid = fc.integer({ min: 1, max: 3 });
const addr = fc.integer({ min: 0, max: 24 }).map((k) => k * 16);
const pool = fc.integer({ min: 1, max: 6 }).map((k) => 0x1000 * k);
const stack = fc.integer({ min: 0, max: 8 });
const size = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.constant(2 ** 33));
const dt = fc.integer({ min: 0, max: 1000 });
const step: fc.Arbitrary<Omit<Event, 't'> & { dt: number }> = fc.oneof(
  fc.record({ kind: fc.constant('alloc' as const), pid, dt, tid: pid, addr, size, stack }),
  fc.record({ kind: fc.constant('free' as const), pid, dt, tid: pid, addr }),
  fc.record({ kind: fc.constant('realloc' as const), pid, dt, tid: pid, oldAddr: addr, addr, size, stack }),
  fc.record({ kind: fc.constant('pool-create' as const), pid, dt, tid: pid, pool, parent: fc.oneof(fc.constant(0), pool), poolKind: fc.constantFrom('nginx', 'apr'), tag: fc.constantFrom('', 'request', 'conn'), stack }),
  fc.record({ kind: fc.constant('pool-destroy' as const), pid, dt, pool, stack }),
  fc.record({ kind: fc.constant('pool-clear' as const), pid, dt, pool, stack }),
  fc.record({ kind: fc.constant('pool-alloc' as const), pid, dt, tid: pid, pool, size, addr, stack }),
  fc.record({ kind: fc.constant('pool-free' as const), pid, dt, pool, addr }),
  fc.record({ kind: fc.constant('pool-tag' as const), pid, dt, pool, tag: fc.constantFrom('request', 'conn') }),
  fc.record({ kind: fc.constant('fork' as const), pid, dt, parentPid: pid }),
  fc.record({ kind: fc.constant('rss' as const), pid, dt, bytes: size }),
) as fc.Arbitrary<Omit<Event, 't'> & { dt: number }>;
const timedEvents = fc.array(step, { maxLength: 400 }).map((steps) => {
  let t = 0;
  return steps.map(({ dt: d, ...rest }) => ({ ...rest, t: (t += d) }) as Event);
});

async function write(events: Event[], meta: TraceMeta, chunkBytes: number): Promise<string> {
  const path = join(dir, `t${Math.random().toString(36).slice(2)}.lstrace`);
  const w = TraceWriter.create(path, meta, { chunkBytes });
  for (const e of events) w.event(e);
  await w.close();
  return path;
}

function analyzed(engine: Engine): unknown {
  return JSON.parse(JSON.stringify(analyze(engine.finish(), { top: 50 })));
}

test('the engine has a fast path, wrappers that only forward event() do not', () => {
  assert.ok(fastSink(new Engine()));
  assert.equal(fastSink({ event() {} } as EventSink), undefined);
});

test('the decoder gives a fast sink exactly the events it gives an object sink', async () => {
  await fc.assert(
    fc.asyncProperty(eventsArb, fc.constantFrom(64, 4096), async (events, chunkBytes) => {
      const path = await write(events, { format: 1, clock: 'ns', source: 'test' }, chunkBytes);
      const plain: Event[] = [];
      await readTrace(path, { event: (e) => plain.push(e) });
      const rec = new Recorder();
      await readTrace(path, rec);
      assert.deepStrictEqual(rec.got, plain);
      rmSync(path);
    }),
    { numRuns: 150 },
  );
});

test('read into the engine: the fast path and the object path give identical state and analysis', async () => {
  await fc.assert(
    fc.asyncProperty(timedEvents, fc.constantFrom<TraceMeta['clock']>('ns', 'seq'), fc.constantFrom(0, 512), async (events, clock, sampleBytes) => {
      const meta: TraceMeta = { format: 1, clock, source: 'test', ...(sampleBytes ? { sampleBytes } : {}) };
      const path = await write(events, meta, 300);
      const fast = new Engine({ meta });
      await readTrace(path, fast);
      const slow = new Engine({ meta });
      await readTrace(path, { event: (e) => slow.event(e) });
      assert.deepStrictEqual(analyzed(fast), analyzed(slow));
      rmSync(path);
    }),
    { numRuns: 150 },
  );
});

/** A JSON value without its series and verdicts (what transient allocations change). */
function withoutSeries(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutSeries);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'series' && k !== 'verdict') out[k] = withoutSeries(x);
  return out;
}

// End to end through the input layer: the pipeline (the engine behind the time placer, fast
// path) against the same inputs folded through event() only.
async function bothWays(paths: string[]): Promise<[unknown, unknown]> {
  const { state } = await foldFiles(paths);
  const fast = JSON.parse(JSON.stringify(analyze(state, { top: 50 })));
  const slow = new Engine();
  const { meta } = await readInputs(paths, { event: (e) => slow.event(e) }, { onMeta: (m) => slow.begin(m) });
  const st = slow.finish();
  st.meta = meta;
  return [fast, JSON.parse(JSON.stringify(analyze(st, { top: 50 })))];
}

test('input layer: heaptrack file, APR log and two traces placed on one timeline give the same analysis on both paths', async () => {
  const exe = join(dir, 'ht-leak');
  execFileSync('gcc', ['-g', '-O2', '-o', exe, new URL('../programs/ht-leak.c', import.meta.url).pathname]);
  execFileSync('heaptrack', [exe, '3000'], { cwd: dir, stdio: 'ignore' });
  const ht = join(dir, readdirSync(dir).find((f) => /^heaptrack\.ht-leak\.\d+\.zst$/.test(f))!);
  const [a, b] = await bothWays([ht]);
  assert.ok((a as { processes: { sites: unknown[] }[] }).processes[0]!.sites.length > 0, 'the heaptrack file has leak sites');
  // An allocation freed by the very next heaptrack record takes the fast path's transient call
  // (counted, never live, no series point), while a plain sink gets it as alloc + free, which
  // add two points to the heap and site series: on this input the paths agree on every figure
  // but the series and the verdicts drawn from them.
  assert.deepStrictEqual(withoutSeries(a), withoutSeries(b));

  const apr = new URL('../fixtures/apr-pool-debug.httpd-1child.log.gz', import.meta.url).pathname;
  const [c, d] = await bothWays([apr]);
  assert.deepStrictEqual(c, d);

  // Two ns traces a second apart: the second one's times are shifted onto the first's timeline.
  const mk = async (startWallMs: number, base: number) => {
    const events: Event[] = [{ kind: 'process', pid: 7, t: 0, ppid: 1, command: 'srv', exe: '/srv' }];
    for (let k = 0; k < 200; k++) {
      events.push({ kind: 'alloc', pid: 7, t: 1000 * k, tid: 7, addr: base + 64 * k, size: 100 + k, stack: 1 + (k % 5) });
      if (k % 3 === 0) events.push({ kind: 'free', pid: 7, t: 1000 * k + 10, tid: 7, addr: base + 64 * k });
      if (k % 7 === 0) {
        events.push({ kind: 'pool-create', pid: 7, t: 1000 * k + 20, tid: 7, pool: 0x9000 + k, parent: 0, poolKind: 'nginx', tag: 'request', stack: 2 });
        events.push({ kind: 'pool-alloc', pid: 7, t: 1000 * k + 30, tid: 7, pool: 0x9000 + k, size: 512, addr: 0, stack: 3 });
        if (k % 14 === 0) events.push({ kind: 'pool-destroy', pid: 7, t: 1000 * k + 40, pool: 0x9000 + k, stack: 0 });
      }
      if (k % 50 === 0) events.push({ kind: 'realloc', pid: 7, t: 1000 * k + 50, tid: 7, oldAddr: base + 64 * k, addr: base + 64 * k + 32, size: 9000, stack: 4 });
    }
    return write(events, { format: 1, clock: 'ns', source: 'test', startWallMs }, 4096);
  };
  const [e, f] = await bothWays([await mk(1_700_000_000_000, 0x10000), await mk(1_700_000_001_000, 0x80000)]);
  assert.deepStrictEqual(e, f);
});
