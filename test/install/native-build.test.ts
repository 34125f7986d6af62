// scripts/build-native.mjs --into (what a first use and `leakscope setup` run), on a copy of the
// package's files: a part whose sources do not compile fails in one line that points at the
// compiler's messages, and leaves neither a built file nor its private copy behind; a copy left
// by a killed build is removed by the next one; a part already built is not built again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ls-native-build-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An installed package's files (no src/: messages name `leakscope setup`). */
function pkg(name: string): string {
  const p = join(dir, name);
  for (const f of ['scripts/build-native.mjs', 'scripts/system-packages.mjs', 'scripts/debian-packages.txt']) cpSync(join(root, f), join(p, f));
  cpSync(join(root, 'native'), join(p, 'native'), { recursive: true, filter: (src) => !/\/native\/[^/]+\/build$/.test(src) });
  return p;
}

const build = (p: string, into: string, need: string[]) =>
  spawnSync(process.execPath, [join(p, 'scripts/build-native.mjs'), '--into', into, '--need', need.join(',')], { encoding: 'utf8' });

test('a part that does not compile: one line naming the error and the log, no file, no copy left', () => {
  const p = pkg('broken');
  const src = join(p, 'native/recorder/src', readdirSync(join(p, 'native/recorder/src')).find((f) => f.endsWith('.c'))!);
  appendFileSync(src, '\nthis is not C;\n');
  const into = join(dir, 'broken-out');
  const r = build(p, into, ['recorder/build/libleakscope.so']);
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, new RegExp(`^leakscope: native/recorder did not build: .*error.* \\(all the compiler said is in ${join(into, 'build.log')}\\); 'leakscope setup' tries again$`));
  assert.match(readFileSync(join(into, 'build.log'), 'utf8'), /this is not C/);
  assert.ok(!existsSync(join(into, 'recorder/build/libleakscope.so')));
  assert.deepEqual(readdirSync(into).filter((f) => f.startsWith('.build-')), []);
});

test('a copy a killed build left is removed; what is built is not built again', () => {
  const p = pkg('ok');
  const into = join(dir, 'ok-out');
  mkdirSync(join(into, '.build-killed/recorder'), { recursive: true });
  const first = build(p, into, ['recorder/build/libleakscope.so']);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, new RegExp(`^leakscope: built native/recorder in [\\d.]+ s, into ${into}\\n$`));
  assert.deepEqual(readdirSync(into).filter((f) => f.startsWith('.build-')), []);
  assert.deepEqual(readdirSync(join(into, 'recorder/build')).sort(), ['libleakscope.so', 'ls-clock'], 'the built files alone, no objects');
  const again = build(p, into, ['recorder/build/libleakscope.so']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stderr, '', 'nothing to build');
});
