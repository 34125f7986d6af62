// The tracer's per-thread walk cache must not change a single stack: the same handlers traced
// with and without it (LSTRACE_LUAJIT_NO_WALK_CACHE) give the same stacks in the same shares,
// compiled and interpreted. And the measurement switches the bench relies on do what they say.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SymbolTables } from '../../src/model/stacks.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachLuajit, type AttachLuajitResult } from '../../src/luajit/attach-luajit.js';
import { curlBatch, GARBAGE_LINE, LEAK_LINE, LEAK_LINE_INTERP, startLuaServer, type LuaServer } from './nginx-server.js';

let server: LuaServer;
let dir: string;

before(async () => {
  server = await startLuaServer(1);
  dir = mkdtempSync(join(tmpdir(), 'leakscope-luajit-cache-'));
  await curlBatch(server.port, 'warm', 200); // module loaded, traces compiled
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Rounds of requests traced: a fixed amount of traffic, however slow the machine is. */
const ROUNDS = 6;

/** Traces a fixed mix of compiled and interpreted requests, sent once the worker's allocator is
 * probed; env set for the tracer only. */
async function trace(name: string, env: Record<string, string>): Promise<AttachLuajitResult & { out: string }> {
  const out = join(dir, `${name}.lstrace`);
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  let done = false;
  const stop = new AbortController();
  const probed = new Set<number>();
  let traced: Promise<AttachLuajitResult>;
  try {
    traced = attachLuajit({ pids: server.workers, durationMs: 120_000, out, settleMs: 0, signal: stop.signal, onTraced: (pid) => probed.add(pid) })
      .finally(() => (done = true));
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
  // The tracer finds the allocator through a Lua API call: requests until it has.
  for (let i = 0; probed.size < server.workers.length && !done; i++) await curlBatch(server.port, `${name}w${i}`, 5, 0);
  for (let i = 0; i < ROUNDS && !done; i++) {
    await Promise.all([curlBatch(server.port, `${name}${i}`, 40, 5), curlBatch(server.port, `${name}${i}i`, 20, 0, '/leaki')]);
  }
  stop.abort();
  return { ...(await traced), out };
}

/** Share of allocations per rendered stack (leaf first, temp dir names removed). */
async function stackShares(path: string): Promise<Map<string, number>> {
  const syms = new SymbolTables();
  const counts = new Map<string, number>();
  let n = 0;
  await readTrace(path, {
    event(e) {
      if (e.kind === 'frame') syms.scope(e.pid).defineFrame(e.id, e.frame);
      else if (e.kind === 'stack') syms.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      else if (e.kind === 'alloc') {
        const key = syms
          .scope(e.pid)
          .stackFrames(e.stack)
          .map((f) => `${f.fn} ${f.file}:${f.line}`)
          .join(' < ');
        counts.set(key, (counts.get(key) ?? 0) + 1);
        n++;
      }
    },
  });
  return new Map([...counts].map(([k, c]) => [k, c / n]));
}

test('the walk cache changes no stack: same stacks, same shares, compiled and interpreted', { timeout: 45_000 }, async () => {
  const cached = await trace('cached', { LSTRACE_LUAJIT_STATS: '2' });
  const fresh = await trace('fresh', { LSTRACE_LUAJIT_STATS: '2', LSTRACE_LUAJIT_NO_WALK_CACHE: '1' });
  assert.equal(cached.lost, 0);
  assert.equal(fresh.lost, 0);
  // counters: [0] walks ... [12] walks reused from the cache (lj_alloc.bpf.c C_CACHE_HIT - 1)
  const hits = cached.bpfCounters?.[12] ?? 0;
  const walks = cached.bpfCounters?.[0] ?? 0;
  assert.ok(walks > 1000 && hits > walks / 2, `cache reused ${hits} of ${walks} walks`);
  assert.equal(fresh.bpfCounters?.[12], 0, 'LSTRACE_LUAJIT_NO_WALK_CACHE still reused walks');

  const a = await stackShares(cached.out);
  const b = await stackShares(fresh.out);
  const major = (m: Map<string, number>) => new Set([...m].filter(([, s]) => s >= 0.02).map(([k]) => k));
  assert.deepEqual([...major(a)].sort(), [...major(b)].sort());
  for (const k of major(a)) {
    assert.ok(Math.abs(a.get(k)! - b.get(k)!) < 0.03, `${k}: ${a.get(k)} with the cache, ${b.get(k)} without`);
  }
  // The known sites, in both: compiled garbage and leak lines, and the interpreted leak line.
  for (const m of [a, b]) {
    const keys = [...m.keys()];
    assert.ok(keys.some((k) => k.includes(`[compiled] `) && k.includes(`leaky.lua:${GARBAGE_LINE} <`)), keys.join('\n'));
    assert.ok(keys.some((k) => k.startsWith('function <') && k.includes(`leaky.lua:${LEAK_LINE} <`)), keys.join('\n'));
    assert.ok(keys.some((k) => !k.split(' < ')[0]!.includes('[compiled]') && k.split(' < ')[0]!.endsWith(`leaky.lua:${LEAK_LINE_INTERP}`)), keys.join('\n'));
  }
});

test('LSTRACE_LUAJIT_MODE=bare: the probes run (BPF statistics count them), nothing is recorded', { timeout: 30_000 }, async () => {
  const r = await trace('bare', { LSTRACE_LUAJIT_STATS: '1', LSTRACE_LUAJIT_MODE: 'bare' });
  assert.equal(r.events, 0);
  const stats = r.bpfStats ?? {};
  const calls = (stats.lj_malloc_site?.runs ?? 0) + (stats.lj_alloc_enter?.runs ?? 0);
  assert.ok(calls > 1000, JSON.stringify(stats));
  assert.ok((stats.lj_alloc_exit?.runs ?? 0) >= calls * 0.9, JSON.stringify(stats));
});
