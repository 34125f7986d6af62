// The same workload gets the same verdicts (no timing lottery). The recorder's clock ticks every
// few ms and the machine is shared, so where a tick falls in a short program, or how requests
// group between ticks, is chance. `npm run bench -- verdicts` makes every `run` capture of the
// corpus 10 times (about 50 s a round here); the suite does 3 rounds of them (10 would add
// minutes to every `npm test`), and the short program of issue 13, a second a run, 10 times.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repeatRuns, TIMING_SENSITIVE } from './repeat.js';

test('a short program under run, 10 times: the same verdicts every time (not freed at exit)', async () => {
  const r = await repeatRuns(10, () => {}, ['short-program']);
  assert.equal(r.cases.length, 1);
  const c = r.cases[0]!;
  assert.equal(c.runs.length, 10);
  assert.ok(c.same, r.lines.join('\n'));
  const verdicts = [...c.runs[0]!.values()].flat();
  assert.ok(verdicts.length >= 2 && verdicts.every((v) => v === 'unfreed'), r.lines.join('\n'));
});

test('every run capture of the corpus (vd-server, apache2, nginx), made 3 times: the same verdicts every time', async () => {
  assert.ok(TIMING_SENSITIVE.length >= 9, TIMING_SENSITIVE.join());
  const names = TIMING_SENSITIVE.filter((n) => n !== 'short-program');
  const r = await repeatRuns(3, () => {}, names);
  // Each capture is one case, and the vd-server and nginx ones also a case cut while running.
  assert.ok(r.cases.length >= names.length, r.cases.map((c) => c.name).join());
  for (const c of r.cases) {
    assert.equal(c.runs.length, 3, c.name);
    assert.ok(c.runs[0]!.size > 0, `${c.name}: labelled entities`);
  }
  const differ = r.cases.filter((c) => !c.same);
  assert.deepEqual(differ.map((c) => c.name), [], r.lines.join('\n'));
});
