import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LiveTable } from '../../src/engine/live-table.js';

test('live table agrees with a Map under random inserts and removals', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 1e6 })), { maxLength: 2000 }),
      (ops) => {
        const t = new LiveTable();
        const m = new Map<number, number>();
        for (const [ins, k, size] of ops) {
          const addr = k * 16 + 0x5555_0000_0000; // realistic 48-bit addresses sharing low bits
          if (ins) {
            assert.equal(t.set(addr, size, k, k), m.has(addr));
            m.set(addr, size);
          } else {
            const i = t.find(addr);
            assert.equal(i >= 0, m.has(addr));
            if (i >= 0) {
              assert.equal(t.sizeAt(i), m.get(addr));
              t.removeAt(i);
              m.delete(addr);
            }
          }
          assert.equal(t.count, m.size);
        }
        for (const [a, s] of m) assert.equal(t.sizeAt(t.find(a)), s);
      },
    ),
    { numRuns: 200 },
  );
});

test('sizes of 4 GiB and more stay exact; times keep their order when coarsened', () => {
  const t = new LiveTable();
  const big = 5 * 2 ** 32 + 123;
  t.set(0x1000, big, 1, 5);
  t.set(0x2000, 2 ** 32 - 2, 2, 10);
  assert.equal(t.sizeAt(t.find(0x1000)), big);
  assert.equal(t.sizeAt(t.find(0x2000)), 2 ** 32 - 2);
  // A nanosecond clock running for days does not fit u32: the table coarsens its times.
  const day = 86400e9;
  t.set(0x3000, 16, 3, 3 * day);
  assert.ok(Math.abs(t.timeAt(t.find(0x3000)) - 3 * day) / (3 * day) < 1e-6);
  assert.ok(t.timeAt(t.find(0x1000)) <= t.timeAt(t.find(0x3000)));
  t.removeAt(t.find(0x1000));
  assert.equal(t.find(0x1000), -1);
  t.set(0x1000, 8, 1, 3 * day);
  assert.equal(t.sizeAt(t.find(0x1000)), 8);
});

test('a live allocation costs at most 48 bytes at 1M live', () => {
  const t = new LiveTable();
  for (let i = 1; i <= 1_000_000; i++) t.set(0x7f00_0000_0000 + i * 48, 64, i & 1023, i);
  assert.equal(t.count, 1_000_000);
  const perEntry = t.memoryBytes / t.count;
  assert.ok(perEntry <= 48, `${perEntry} bytes per live allocation`);
});

// The hash must keep probes short whatever the allocator does: addresses that share their low
// bits, pages, strides of a power of two, whole regions filled densely. (A hash that kept
// neighbouring addresses in neighbouring slots — region hashed, offset within it kept — was
// tried for cache locality: on densely filled 1 KiB regions its mean probe was 84 slots, max 2383.)
test('live table: probes stay short on adversarial address patterns', () => {
  const N = 100_000; // just under a doubling: 2^17 slots, load ~0.76
  let x = 7;
  const rand = () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  const patterns: Record<string, (i: number) => number> = {
    'spread 4 KiB': (i) => 0x5555_0000_0010 + i * 4096,
    'dense 16 B': (i) => 0x5555_0000_0010 + i * 16,
    'dense 32 B': (i) => 0x5555_0000_0010 + i * 32,
    'page-aligned at random': () => 0x7f00_0000_0000 + Math.floor(rand() * 2 ** 30) * 4096,
    'full 1 KiB regions at random': (i) => 0x5555_0000_0000 + ((Math.floor(i / 64) * 7919) % 2 ** 24) * 1024 + (i % 64) * 16,
    'stride 1 MiB': (i) => 0x5555_0000_0000 + i * 2 ** 20,
    'stride 64 KiB + 16': (i) => 0x5555_0000_0000 + i * 65552,
    'high half only': (i) => (i + 1) * 2 ** 32,
  };
  for (const [name, gen] of Object.entries(patterns)) {
    const t = new LiveTable();
    const keys = new Set<number>();
    for (let i = 0; keys.size < N; i++) {
      const a = gen(i);
      if (keys.has(a)) continue;
      keys.add(a);
      t.set(a, 64, 1, 0);
    }
    let sum = 0;
    let max = 0;
    for (const a of keys) {
      const n = t.probeLength(a);
      assert.ok(n >= 1, `${name}: ${a} is live`);
      sum += n;
      max = Math.max(max, n);
    }
    // Uniform hashing at this load: ~2.6 slots on average for a hit, a longest run in the tens.
    assert.ok(sum / N < 3.5, `${name}: mean probe ${(sum / N).toFixed(2)}`);
    assert.ok(max < 200, `${name}: longest probe ${max}`);
  }
});

test('live table: address 0 (the empty-slot mark) is never found', () => {
  const t = new LiveTable();
  assert.equal(t.find(0), -1);
  t.set(0x5555_0000_0010, 64, 1, 0);
  assert.equal(t.find(0), -1);
  assert.equal(t.probeLength(0), -1);
  assert.equal(t.count, 1);
});
