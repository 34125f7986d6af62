// Golden outputs: every fixture (test/fixtures: the APR and nginx logs, the lstrace traces, the
// valgrind XML and the heaptrack trace) through every output of the CLI (analyze text and JSON,
// info, import's trace bytes, the HTML report's data and page, pprof, speedscope, collapsed
// stacks, diff as text, JSON and HTML), compared byte for byte with test/golden/expected/,
// which was written by the code itself (test/golden/render.ts says what is kept of each output).
//
// This holds a refactor to "the output did not change". A change that is MEANT to change an
// output (a new field, a better wording, a fixed verdict) regenerates the goldens with
//     npm run goldens
// and commits test/golden/expected/ with it, so the review shows what changed in the output.
// When branches that each changed outputs are merged, regenerate after the merge (the expected
// files are generated, never merged by hand).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const expectedDir = join(root, 'test/golden/expected');

/** The first line where two outputs differ, to say where without dumping the file. */
function firstDifference(a: Buffer, b: Buffer): string {
  const la = a.toString('utf8').split('\n');
  const lb = b.toString('utf8').split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}:\n    expected: ${JSON.stringify(la[i]?.slice(0, 300))}\n    got:      ${JSON.stringify(lb[i]?.slice(0, 300))}`;
  }
  return `same lines, different bytes (${a.length} vs ${b.length})`;
}

test('every fixture through every output is byte-identical to test/golden/expected (npm run goldens regenerates)', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-golden-test-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/golden/render.ts', dir], {
      cwd: root, encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' }, timeout: 590_000,
    });
    assert.equal(r.status, 0, `render.ts failed:\n${r.stderr}`);
    const want = readdirSync(expectedDir).sort();
    const got = readdirSync(dir).sort();
    assert.deepEqual(got, want, 'the set of golden files differs (a case added or removed: npm run goldens)');
    const diffs: string[] = [];
    for (const f of want) {
      const a = readFileSync(join(expectedDir, f));
      const b = readFileSync(join(dir, f));
      if (!a.equals(b)) diffs.push(`${f}: ${firstDifference(a, b)}`);
    }
    assert.equal(diffs.length, 0, `${diffs.length} output(s) changed; if that is intended, run \`npm run goldens\` and commit test/golden/expected:\n${diffs.join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
