// Symbolization after the run (src/symbols/): inlined frames spliced into stacks, and the fast
// definition scan agreeing with the full trace reader, on intact and damaged files.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Event } from '../../src/model/events.js';
import { scanDefinitions } from '../../src/symbols/scan.js';
import { readTrace } from '../../src/trace/reader.js';
import { buildRecorder, compile, root, runJson, sitesWith, workDir } from './harness.js';

const KEEP = new Set(['frame', 'stack', 'module', 'fork', 'exec']);

async function both(path: string): Promise<{ read: string[]; scan: string[]; scanWarnings: string[] }> {
  const read: string[] = [];
  const scan: string[] = [];
  const scanWarnings: string[] = [];
  await readTrace(path, { event: (e: Event) => { if (KEEP.has(e.kind)) read.push(JSON.stringify({ ...e, t: 0 })); } }, { onWarning: () => {} });
  await scanDefinitions(path, { event: (e) => scan.push(JSON.stringify(e)) }, (w) => scanWarnings.push(w));
  return { read, scan, scanWarnings };
}

describe('symbols', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('symbols');
  });

  it('shows an inlined allocation site, then the function it was inlined into', () => {
    const exe = compile(dir, 'rec-inline');
    const { run, result } = runJson(join(dir, 'inline.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const s = sitesWith(result.processes[0]!, 'inlined_leaf');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 25 * 64);
    const fns = s[0]!.stack.map((f) => f.fn);
    const i = fns.indexOf('inlined_leaf');
    assert.equal(fns[i + 1], 'outer_caller', fns.join(' <- '));
    assert.equal(s[0]!.stack[i]!.inlined, true);
    assert.equal(s[0]!.stack[i + 1]!.inlined, false);
    assert.ok(fns.includes('main'));
  });

  it('the definition scan yields exactly what the reader does', async () => {
    const fixture = join(root, 'test', 'fixtures', 'lstrace', 'every-kind.lstrace');
    const a = await both(fixture);
    assert.ok(a.read.length >= 5);
    assert.deepEqual(a.scan, a.read);
    assert.deepEqual(a.scanWarnings, []);

    const exe = compile(dir, 'rec-fork');
    const trace = join(dir, 'fork.lstrace');
    runJson(trace, [exe]);
    const b = await both(trace);
    assert.equal(b.read.filter((s) => s.includes('"kind":"fork"')).length, 2);
    assert.deepEqual(b.scan, b.read);

    // Damage: a flipped byte inside the first chunk, and a cut last chunk.
    const bytes = readFileSync(trace);
    const first = bytes.indexOf('LSCK');
    bytes[first + 20] ^= 0xff;
    const damaged = join(dir, 'damaged.lstrace');
    writeFileSync(damaged, bytes.subarray(0, bytes.length - 5));
    const c = await both(damaged);
    assert.deepEqual(c.scan, c.read);
    assert.ok(c.scan.length < b.scan.length);
    assert.ok(c.scanWarnings.some((w) => /damaged/.test(w)) && c.scanWarnings.some((w) => /truncated/.test(w)), c.scanWarnings.join('; '));
  });
});
