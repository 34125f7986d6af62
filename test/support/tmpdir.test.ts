// The test runner (scripts/run-tests.mjs) gives the tests a private TMPDIR, so that it can tell
// what they leave behind. LEAKSCOPE_TMP_PROBE_LEAVE=1 (set only by test/install/runner.test.ts)
// leaves a file there on purpose, to see the runner catch it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

test('tests run with a private TMPDIR from the runner', () => {
  assert.match(basename(tmpdir()), /^leakscope-tests-\w+$/);
  if (process.env.LEAKSCOPE_TMP_PROBE_LEAVE === '1') writeFileSync(join(tmpdir(), 'ls-probe-left'), 'x'.repeat(10000));
});
