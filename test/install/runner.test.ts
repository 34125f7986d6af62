// `npm test` (scripts/run-tests.mjs) on a machine that lacks a package stops at once with the
// one command that installs it, never a wall of failures; a run reports its peak memory and
// temporary files, and fails when passing tests left files behind (removing them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testDir } from '../support/tmp.js';

const root = new URL('../..', import.meta.url).pathname;
const runner = join(root, 'scripts/run-tests.mjs');

function run(args: string[], env: Record<string, string> = {}, asNobody = false, script = runner) {
  const argv = [process.execPath, script, ...args];
  const cmd = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
  // A runner of its own, not a part of this one (node:test skips files when it sees its context).
  const { NODE_TEST_CONTEXT: _, ...outer } = process.env;
  return spawnSync(cmd[0]!, cmd.slice(1), { cwd: root, encoding: 'utf8', env: { ...outer, ...env }, timeout: 300_000 });
}

test('a missing package: one line with the command that installs it, before any test runs', () => {
  const dir = testDir('ls-runner');
  chmodSync(dir, 0o755); // read by the runner run as nobody
  const list = join(dir, 'packages.txt');
  // The real list plus a package no machine has.
  writeFileSync(list, `leakscope-test-absent-package test dpkg - a package that does not exist\n`);
  const r = run(['support/tmpdir'], { LEAKSCOPE_PACKAGE_LIST: list, LEAKSCOPE_TEST_NO_INSTALL: '1' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '', 'no test ran');
  assert.equal(r.stderr, "leakscope tests: stopped before any test: missing Debian packages leakscope-test-absent-package: run 'apt-get install -y leakscope-test-absent-package' as root (or .ci/run, which installs them)\n");
  // Not root: the runner cannot install, and says the command. Run from a copy nobody can read
  // wherever the checkout is (a clone under /root is not).
  const copy = join(dir, 'tree');
  for (const f of ['run-tests.mjs', 'system-packages.mjs', 'debian-packages.txt', 'build-native.mjs']) cpSync(join(root, 'scripts', f), join(copy, 'scripts', f));
  mkdirSync(join(copy, 'test'));
  writeFileSync(join(copy, 'test', 'never.test.ts'), 'throw new Error("the runner must stop before any test");\n');
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  const user = run(['never'], { LEAKSCOPE_PACKAGE_LIST: list, HOME: dir }, true, join(copy, 'scripts', 'run-tests.mjs'));
  assert.equal(user.status, 2, user.stderr);
  assert.equal(user.stderr, "leakscope tests: stopped before any test: not root: run 'apt-get install -y leakscope-test-absent-package' as root\n");
});

test('a run prints its peak memory and temporary files, and fails when passing tests left files', () => {
  const clean = run(['support/tmpdir']);
  assert.equal(clean.status, 0, clean.stderr);
  const line = /leakscope tests: 1 files in \d+ s; peak memory (\d+) MiB \(every process of the suite together, sampled every 50 ms for 1 s, then twice a second\); peak temporary files (\d+) MiB \(TMPDIR (\S+)\); left behind: nothing\n/.exec(clean.stderr);
  assert.ok(line, clean.stderr);
  assert.ok(Number(line[1]) > 0, 'memory measured');
  assert.ok(!existsSync(line[3]!), 'its TMPDIR removed');

  const dirty = run(['support/tmpdir'], { LEAKSCOPE_TMP_PROBE_LEAVE: '1' });
  assert.equal(dirty.status, 1);
  assert.match(dirty.stderr, /left behind: ls-probe-left \(0 MiB\)\n/);
  assert.match(dirty.stderr, /leakscope tests: FAIL: the tests passed but left ls-probe-left in TMPDIR: a test must remove what it writes\n/);
  const tmp = /TMPDIR (\S+)\)/.exec(dirty.stderr)![1]!;
  assert.ok(!existsSync(tmp), 'what they left removed');
});
