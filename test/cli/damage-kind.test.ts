// Which warnings mean "damaged input" (exit 1) is said where they are made, not read from their
// wording: every damaged input is marked by its reader whatever the message says, and a note
// that merely contains damage words (a bad-record sample quoting the log) does not fail the
// command. The last test failed when damage was found by a regex over the warnings' text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readInputs } from '../../src/sources/open.js';
import type { InputStats } from '../../src/sources/open.js';
import { analyzeInputs } from '../../src/pipeline/analyze-files.js';
import { cli } from '../support/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => join(root, 'test/fixtures', name);
let dir = '';
const f = (name: string) => join(dir, name);

async function statsOf(path: string): Promise<InputStats> {
  const { stats } = await readInputs([path], { event() {} });
  return stats[0]!;
}


before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-damage-kind-'));
  const apr = readFileSync(fixture('apr-pool-debug.httpd-1child.log.gz'));
  writeFileSync(f('trunc.log.gz'), apr.subarray(0, 30_000));
  const zst = execFileSync('zstd', ['-q', '-c'], { input: gunzipSync(apr), maxBuffer: 64 << 20 });
  writeFileSync(f('trunc.log.zst'), zst.subarray(0, zst.length >> 3));
  const trace = readFileSync(fixture('lstrace/every-kind.lstrace'));
  writeFileSync(f('trunc.lstrace'), trace.subarray(0, trace.length - 7));
  const flipped = Buffer.from(trace);
  flipped[flipped.length - 20] ^= 0xff; // inside the last chunk's payload: a CRC mismatch
  writeFileSync(f('crc.lstrace'), flipped);
  const gz = gzipSync(trace);
  writeFileSync(f('trace.lstrace.gz'), gz.subarray(0, gz.length >> 1));
  const text = gunzipSync(apr);
  writeFileSync(f('binary.log'), Buffer.concat([text.subarray(0, text.indexOf('\n', 4000) + 1), Buffer.from([0, 1, 2, 0, 10, 0, 0, 10])]));
  writeFileSync(f('cut.xml'), '<?xml version="1.0"?>\n<valgrindoutput>\n<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n<pid>42</pid>\n<error><unique>0x1</unique><kind>Leak_DefinitelyLost</kind><xwhat><text>8 bytes</text><leakedbytes>8</leakedbytes><leakedblocks>1</leakedblocks></xwhat><stack><frame><ip>0x1</ip><fn>main</fn></frame></stack></error>\n<error><unique>0x2</unique><kind>Leak_Defin');
  // A good nginx log with one malformed line that quotes words the old wording test looked for.
  const ngx = gunzipSync(readFileSync(fixture('nginx-debug.1worker.log.gz')));
  const cut = ngx.indexOf('\n', ngx.length >> 1) + 1;
  writeFileSync(f('quoting.log'), Buffer.concat([ngx.subarray(0, cut), Buffer.from('2026/11/22 05:30:04 [debug] 3641#0: malloc: truncated binary data, cut short, damaged, ends early\n'), ngx.subarray(cut)]));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('every damaged input is marked as damage by its reader (decompressors, trace chunks, binary text, cut XML)', async () => {
  const cases: [string, RegExp][] = [
    ['trunc.log.gz', /gzip data/],
    ['trunc.log.zst', /zstd data/],
    ['trunc.lstrace', /last chunk/],
    ['crc.lstrace', /CRC mismatch/],
    ['trace.lstrace.gz', /gzip data/],
    ['binary.log', /NUL bytes/],
    ['cut.xml', /XML/],
  ];
  for (const [name, re] of cases) {
    const st = await statsOf(f(name));
    assert.ok(st.damaged.length > 0, `${name}: no damage among ${JSON.stringify(st.warnings)}`);
    assert.ok(st.damaged.some((w) => re.test(w)), `${name}: ${JSON.stringify(st.damaged)}`);
    // The damage warnings are warnings too, in the same order.
    assert.deepEqual(st.warnings.filter((w) => st.damaged.includes(w)), st.damaged, name);
  }
  // The APR log's notes (skipped foreign lines) are not damage.
  const good = await statsOf(fixture('apr-pool-debug.httpd-1child.log.gz'));
  assert.ok(good.warnings.length > 0, 'the fixture has notes');
  assert.deepEqual(good.damaged, []);
});

test('the analysis carries the damage warnings beside its warnings; a bad record quoting damage words is a note', async () => {
  const { result, damaged } = await analyzeInputs([f('trunc.lstrace')]);
  assert.ok(damaged.length > 0);
  for (const w of damaged) assert.ok(result.warnings.includes(w), w);
  const q = await analyzeInputs([f('quoting.log')]);
  assert.ok(q.result.warnings.some((w) => /record\(s\) not understood, e\.g\. .*truncated binary data/.test(w)), JSON.stringify(q.result.warnings));
  assert.deepEqual(q.damaged, []);
});

test('CLI: a log line quoting "truncated" or "binary data" does not fail analyze/report; real damage still exits 1', async () => {
  const [a, r, d] = await Promise.all([
    cli(['analyze', f('quoting.log'), '--format', 'json']),
    cli(['report', f('quoting.log'), '-o', f('quoting.html')]),
    cli(['analyze', f('crc.lstrace')]),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stderr, '');
  assert.ok(JSON.parse(a.stdout).warnings.some((w: string) => /truncated binary data/.test(w)), 'the note is in the report');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^leakscope: wrote .*quoting\.html \(\d+ KiB\)\n$/);
  assert.equal(d.code, 1, d.stderr);
  assert.match(d.stderr, /^leakscope: warning: .*crc\.lstrace: damaged data from byte \d+ to the end skipped \(CRC mismatch\); the report covers the readable part\n$/);
});
