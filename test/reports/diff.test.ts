// `leakscope diff`: between two traces, and between two points (markers, times) of one trace.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceWriter } from '../../src/trace/writer.js';
import { scenario, STEP, HOSTILE } from './scenario.js';
import type { Scenario } from './scenario.js';
import { cliSync } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'leakscope-diff-'));
const small = join(dir, 'small.lstrace');
const big = join(dir, 'big.lstrace');
const hostile = join(dir, 'hostile.lstrace');

async function write(path: string, s: Scenario): Promise<void> {
  const w = TraceWriter.create(path, s.meta);
  for (const e of s.events) w.event(e);
  await w.close();
}

before(async () => {
  await write(small, scenario({ steps: 100 }));
  await write(big, scenario({ steps: 300 }));
  await write(hostile, scenario({ steps: 50, hostile: true }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Row { kind: string; name: string; pid?: number; before: { bytes: number; count?: number }; after: { bytes: number; count?: number }; delta: number }
const json = (args: string[]): { mode: string; rows: Row[] } => {
  const r = cliSync(['diff', ...args, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('diff two traces: what grew, by site and by pool class', () => {
  const d = json([small, big]);
  assert.equal(d.mode, 'traces');
  const leak = d.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7)')!;
  assert.deepEqual([leak.before, leak.after, leak.delta], [{ bytes: 100_000, count: 100 }, { bytes: 300_000, count: 300 }, 200_000]);
  const poolSite = d.rows.find((r) => r.kind === 'site' && r.name === 'remember (cache.c:25) [pool pchild]')!;
  assert.equal(poolSite.delta, 60_000);
  const cls = d.rows.find((r) => r.kind === 'pool' && r.name === 'pchild')!;
  assert.equal(cls.delta, 60_000);
  assert.ok(!d.rows.some((r) => r.name.startsWith('temp_buf')), 'nothing outstanding on either side: not listed');
  // Biggest growth first within sites.
  const sites = d.rows.filter((r) => r.kind === 'site');
  assert.equal(sites[0]!.name, 'leaky_alloc (leaky.c:7)');
  const text = cliSync(['diff', small, big]).stdout;
  assert.match(text, /^What grew from .*small\.lstrace to .*big\.lstrace:/);
  assert.match(text, /\+195 KiB\s+97\.7 KiB → 293 KiB\s+leaky_alloc \(leaky\.c:7\)\s+\(100 → 300 blocks\)/);
});

test('diff two points of one trace: marker names and times as range edges', () => {
  const d = json([small, '--from', 'warmup done', '--to', 'load']);
  assert.equal(d.mode, 'points');
  const leak = d.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7)')!;
  // Markers at steps 20 and 60; the grid has 2^24 ns buckets (about 1.7 steps), so ±2 blocks.
  assert.ok(Math.abs(leak.before.count! - 20) <= 2 && Math.abs(leak.after.count! - 60) <= 2, JSON.stringify(leak));
  assert.equal(leak.delta, (leak.after.count! - leak.before.count!) * 1000);
  const poolSite = d.rows.find((r) => r.kind === 'site' && r.name === 'remember (cache.c:25) [pool pchild]')!;
  assert.ok(poolSite.delta > 0);
  const cls = d.rows.find((r) => r.kind === 'pool' && r.name === 'pchild')!;
  assert.ok(Math.abs(cls.delta - 40 * 300) <= 600, JSON.stringify(cls));
  const total = d.rows.find((r) => r.kind === 'total')!;
  assert.ok(Math.abs(total.delta - 40 * 1300) <= 2 * 1300, JSON.stringify(total));
  // Times: 0.2 s to 0.6 s is the same span.
  const t = json([small, '--from', '200ms', '--to', '0.6s']);
  const leak2 = t.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7)')!;
  assert.ok(Math.abs(leak2.delta - 40_000) <= 2000, String(leak2.delta));
  // --to defaults to the end.
  const toEnd = json([small, '--from', `${50 * STEP}`]);
  const leak3 = toEnd.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7)')!;
  assert.equal(leak3.after.count, 100);
});

test('diff as HTML escapes names from the trace; errors are one line', () => {
  const out = join(dir, 'diff.html');
  const r = cliSync(['diff', small, hostile, '--format', 'html', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const html = readFileSync(out, 'utf8');
  assert.ok(html.includes('leaky_alloc&lt;script&gt;window.__pwned=1&lt;/script&gt;'));
  assert.ok(!html.includes(HOSTILE) && !html.includes('<script'));
  const bad = cliSync(['diff', small, '--from', 'nope']);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr, 'leakscope: --from "nope": not a time (e.g. 30s, 1500ms) nor a marker name (markers: "warmup done", "load")\n');
  assert.match(cliSync(['diff', small, big, '--from', '1s']).stderr, /^leakscope: --from\/--to compare two points of one input/);
  assert.match(cliSync(['diff', small]).stderr, /^leakscope: give a second input/);
  assert.match(cliSync(['diff', small, '--from', 'load', '--to', 'warmup done']).stderr, /comes before/);
});

test('diff two traces: a heap site and an mmap site of one stack stay two rows', async () => {
  const make = async (path: string, n: number): Promise<void> => {
    const s = scenario({ steps: 10 });
    const t = 11 * STEP;
    for (let i = 0; i < n; i++) {
      s.events.push({ kind: 'alloc', pid: s.pid, t: t + i, tid: s.pid, addr: 0x900000 + i * 64, size: 100, stack: s.ids.leak });
      s.events.push({ kind: 'mmap', pid: s.pid, t: t + i, tid: s.pid, addr: 0x7f0000000000 + i * 0x10000, size: 4096, prot: 3, flags: 0x22, stack: s.ids.leak });
    }
    await write(path, s);
  };
  const a = join(dir, 'mmap-a.lstrace');
  const b = join(dir, 'mmap-b.lstrace');
  await make(a, 2);
  await make(b, 5);
  const d = json([a, b]);
  const heap = d.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7)')!;
  const mapped = d.rows.find((r) => r.kind === 'site' && r.name === 'leaky_alloc (leaky.c:7) via mmap')!;
  assert.equal(heap.delta, 300, 'the heap site grew by 3 blocks of 100 bytes');
  assert.deepEqual([mapped.before, mapped.after, mapped.delta], [{ bytes: 2 * 4096, count: 2 }, { bytes: 5 * 4096, count: 5 }, 3 * 4096]);
});
