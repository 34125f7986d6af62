// Outstanding anonymous mappings as leak sites (via 'mmap'): grouped by the mmap's stack, apart
// from heap sites of the same stack, with partial unmaps (start, middle, end), unmaps of
// addresses never mapped, file mappings (no site), --min-age, and a growth verdict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import { StackInterner } from '../../src/model/stacks.js';
import { frame } from '../../src/model/events.js';
import type { Event, TraceMeta } from '../../src/model/events.js';

const META: TraceMeta = { format: 1, clock: 'ns', source: 'test' };
const MS = 1e6;
const PAGE = 4096;
const ANON = 0x22; // MAP_PRIVATE | MAP_ANONYMOUS
const FILE = 0x02; // MAP_PRIVATE

function scenario() {
  const engine = new Engine({ meta: META });
  const pid = 7;
  const st = new StackInterner(engine, pid);
  const f = (fn: string) => frame({ fn, file: 'server.c' });
  const arena = st.stackId([f('grow_arena'), f('handle_request'), f('main')]);
  const cache = st.stackId([f('map_cache'), f('main')]);
  const both = st.stackId([f('alloc_or_map'), f('main')]);
  const ev = (e: Event) => engine.event(e);
  let t = 0;
  const mmap = (addr: number, pages: number, stack: number, flags = ANON) =>
    ev({ kind: 'mmap', pid, tid: pid, t: (t += MS), addr, size: pages * PAGE, prot: 3, flags, stack });
  const munmap = (addr: number, pages: number) => ev({ kind: 'munmap', pid, t: (t += MS), addr, size: pages * PAGE });
  ev({ kind: 'process', pid, t, ppid: 1, command: 'server', exe: '/usr/sbin/server' });

  // grow_arena: 40 mappings of 2 pages, one a "request"; every other one is unmapped again.
  const A = 0x7f0000000000;
  for (let i = 0; i < 40; i++) {
    mmap(A + i * 0x10000, 2, arena);
    ev({ kind: 'alloc', pid, tid: pid, t: (t += MS), addr: 0x1000 + i * 64, size: 32, stack: both });
    ev({ kind: 'free', pid, tid: pid, t: (t += MS), addr: 0x1000 + i * 64 });
    if (i % 2 === 1) munmap(A + i * 0x10000, 2);
  }
  // map_cache: three 8-page mappings, each partly unmapped: from the start (2 pages), the end
  // (3 pages), the middle (pages 2..4: head and tail stay, two ranges).
  const C = 0x7e0000000000;
  mmap(C, 8, cache);
  mmap(C + 0x100000, 8, cache);
  mmap(C + 0x200000, 8, cache);
  munmap(C, 2);
  munmap(C + 0x100000 + 5 * PAGE, 3);
  munmap(C + 0x200000 + 2 * PAGE, 3);
  // Unmaps of addresses never mapped, and a file mapping: no site, no change to the sites.
  munmap(0x10000000, 4);
  munmap(C + 0x300000, 1);
  mmap(0x7d0000000000, 16, cache, FILE);
  // alloc_or_map: a heap block and a mapping from the same stack stay two sites.
  ev({ kind: 'alloc', pid, tid: pid, t: (t += MS), addr: 0x9000, size: 100, stack: both });
  mmap(0x7c0000000000, 1, both);
  const mid = t;
  mmap(0x7c0000100000, 1, both);
  ev({ kind: 'marker', pid, t: (t += MS), label: 'end' });
  return { state: engine.finish(), mid, end: t };
}

test('outstanding anonymous mappings are leak sites by mmap stack, with partial unmaps counted right', () => {
  const { state } = scenario();
  const r = analyze(state, { top: 20 });
  const p = r.processes[0]!;
  const mmapSites = p.sites.filter((s) => s.via === 'mmap');

  const arena = p.sites.find((s) => s.label.startsWith('grow_arena'))!;
  assert.ok(arena, JSON.stringify(p.sites.map((s) => s.label)));
  assert.equal(arena.via, 'mmap');
  assert.equal(arena.key.startsWith('mmap:'), true);
  assert.equal(arena.count, 20);
  assert.equal(arena.bytes, 20 * 2 * PAGE);
  assert.equal(arena.allocatedCount, 40);
  assert.equal(arena.allocatedBytes, 40 * 2 * PAGE);
  assert.ok(arena.oldestT < arena.youngestT);
  assert.equal(arena.verdict?.verdict, 'leak', arena.verdict?.explanation);

  const cache = p.sites.find((s) => s.label.startsWith('map_cache'))!;
  assert.equal(cache.via, 'mmap');
  // 6 + 5 + (2 + 3) pages; the mapping with a hole is two ranges; the file mapping is no site.
  assert.equal(cache.bytes, (6 + 5 + 5) * PAGE);
  assert.equal(cache.count, 4);
  assert.equal(cache.allocatedCount, 3);
  assert.equal(cache.allocatedBytes, 3 * 8 * PAGE);

  // Same stack, heap block and mapping: two sites.
  const both = p.sites.filter((s) => s.label.startsWith('alloc_or_map'));
  assert.equal(both.length, 2);
  const heap = both.find((s) => s.via === undefined)!;
  const mapped = both.find((s) => s.via === 'mmap')!;
  assert.equal(heap.bytes, 100);
  assert.equal(heap.count, 1);
  assert.equal(heap.allocatedCount, 41);
  assert.equal(mapped.bytes, 2 * PAGE);
  assert.equal(mapped.count, 2);
  assert.notEqual(heap.key, mapped.key);

  assert.equal(mmapSites.length, 3);
  // Every mapped byte: the anonymous ones in sites, plus the 16-page file mapping.
  const siteBytes = mmapSites.reduce((s, x) => s + x.bytes, 0);
  assert.equal(p.outstanding.mmapBytes, siteBytes + 16 * PAGE);
  // Shares are of heap + pool + anonymous mapped bytes.
  assert.ok(Math.abs(arena.share - arena.bytes / (siteBytes + 100)) < 1e-12);
  assert.equal(p.outstanding.heapBytes, 100);
  assert.equal(p.verdict.verdict, 'leak', p.verdict.explanation);
});

test('--min-age applies to mappings as to heap blocks', () => {
  const { state, mid, end } = scenario();
  // Only what was mapped by `mid`: the second alloc_or_map mapping is too young.
  const p = analyze(state, { top: 20, minAge: end - mid }).processes[0]!;
  const mapped = p.sites.find((s) => s.via === 'mmap' && s.label.startsWith('alloc_or_map'))!;
  assert.equal(mapped.count, 1);
  assert.equal(mapped.bytes, PAGE);
  assert.equal(mapped.youngestT, mapped.oldestT);
  // Older than everything: no site at all.
  const none = analyze(state, { top: 20, minAge: end + 1 }).processes[0]!;
  assert.equal(none.sites.length, 0);
});

test('a mapping over mapped addresses replaces them; an unmap across several ranges takes each part', () => {
  const engine = new Engine({ meta: META });
  const st = new StackInterner(engine, 3);
  const a = st.stackId([frame({ fn: 'first_map' })]);
  const b = st.stackId([frame({ fn: 'second_map' })]);
  let t = 0;
  const ev = (e: Event) => engine.event(e);
  const base = 0x600000000000;
  ev({ kind: 'mmap', pid: 3, tid: 3, t: ++t, addr: base, size: 10 * PAGE, prot: 3, flags: ANON, stack: a });
  // MAP_FIXED over pages 4..5 from another site: first_map keeps 8 pages in two ranges.
  ev({ kind: 'mmap', pid: 3, tid: 3, t: ++t, addr: base + 4 * PAGE, size: 2 * PAGE, prot: 3, flags: ANON, stack: b });
  let s = analyze(engine.finish(), {}).processes[0]!.sites;
  assert.deepEqual(s.map((x) => [x.label, x.bytes, x.count]), [['first_map', 8 * PAGE, 2], ['second_map', 2 * PAGE, 1]]);
  // One unmap over pages 3..6 takes a page of each first_map range and all of second_map's.
  ev({ kind: 'munmap', pid: 3, t: t + 1, addr: base + 3 * PAGE, size: 4 * PAGE });
  const state = engine.finish();
  s = analyze(state, {}).processes[0]!.sites;
  assert.deepEqual(s.map((x) => [x.label, x.bytes, x.count]), [['first_map', 6 * PAGE, 2]]);
  assert.equal(state.processes[0]!.mmapBytes, 6 * PAGE);
  assert.deepEqual(state.processes[0]!.mappings?.ranges(), [[base, 3 * PAGE], [base + 7 * PAGE, 3 * PAGE]]);
});
