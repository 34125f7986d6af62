// The same workload, run 10 times under `leakscope run`, gets the same verdicts: the short program
// of issue 13 (its whole life is one or two ticks of the recorder's clock, so where a tick falls
// is chance). `VERDICTS_REPEAT=10 npm run bench -- verdicts` does the same for every
// timing-sensitive `run` capture of the corpus (the vd-server ones take minutes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repeatRuns } from './repeat.js';

test('a short program under run, 10 times: the same verdicts every time (not freed at exit)', async () => {
  const r = await repeatRuns(10, () => {}, ['short-program']);
  assert.equal(r.cases.length, 1);
  const c = r.cases[0]!;
  assert.equal(c.runs.length, 10);
  assert.ok(c.same, r.lines.join('\n'));
  const verdicts = [...c.runs[0]!.values()].flat();
  assert.ok(verdicts.length >= 2 && verdicts.every((v) => v === 'unfreed'), r.lines.join('\n'));
});
