import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forEachLine } from '../../src/sources/line-reader.js';

async function* chunks(parts: Buffer[]): AsyncIterable<Buffer> {
  for (const p of parts) yield p;
}

test('lines longer than maxLine are cut and reported, within a chunk, across chunks and at the end', async () => {
  const long = (n: number, c: string) => Buffer.from(c.repeat(n));
  const input = Buffer.concat([
    Buffer.from('short one\n'),
    long(40, 'a'), Buffer.from('\n'), // cut within one chunk
    Buffer.from('ok\n'),
    long(70, 'b'), Buffer.from('\n'), // spans chunks
    Buffer.from('end ok\n'),
    long(50, 'c'), // last line, no newline
  ]);
  // Split into 16-byte chunks so lines cross chunk boundaries.
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += 16) parts.push(input.subarray(i, i + 16));
  const lines: string[] = [];
  let cut = 0;
  await forEachLine(chunks(parts), (b, s, e) => lines.push(b.toString('latin1', s, e)), { maxLine: 32, onLongLine: () => cut++ });
  assert.deepEqual(lines, ['short one', 'a'.repeat(32), 'ok', 'b'.repeat(32), 'end ok', 'c'.repeat(32)]);
  assert.equal(cut, 3);
});

test('lines at or under maxLine are never reported', async () => {
  let cut = 0;
  const lines: string[] = [];
  await forEachLine(chunks([Buffer.from('x'.repeat(32) + '\n' + 'y'.repeat(10))]), (b, s, e) => lines.push(b.toString('latin1', s, e)), { maxLine: 32, onLongLine: () => cut++ });
  assert.deepEqual(lines, ['x'.repeat(32), 'y'.repeat(10)]);
  assert.equal(cut, 0);
});
