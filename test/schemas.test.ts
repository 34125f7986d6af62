// The JSON Schemas generated from the types (scripts/schemas.mjs): the committed ones are what the
// types generate; allocator profiles are validated with theirs (the shipped ones pass, a bad one
// is one line naming the file, the key and the problem); `analyze --format json` output on real
// inputs fits the analysis result's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { builtinProfileNames, loadProfile } from '../src/attach/profile.js';
import { UserError } from '../src/errors.js';
import { cliSync, root } from './support/cli.js';
import { testDir } from './support/tmp.js';

test('the committed schemas are what the types generate', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/schemas.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('the shipped allocator profiles pass their schema', () => {
  const names = builtinProfileNames();
  assert.deepEqual(names, ['apr', 'libc', 'luajit', 'nginx']);
  for (const n of names) assert.equal(loadProfile(n).name, n);
});

test('a bad allocator profile is one line naming the file, the place and the problem', () => {
  const dir = testDir('schemas');
  const good = JSON.parse(readFileSync(join(root, 'profiles/allocators/libc.json'), 'utf8')) as { functions: Record<string, unknown>[] } & Record<string, unknown>;
  const cases: [string, (p: typeof good) => void, RegExp][] = [
    ['role', (p) => { p.functions[0]!.role = 'grow'; }, /functions\[0\]\.role: must be one of alloc, free, realloc,/],
    ['source', (p) => { p.functions[0]!.size = 'arg9'; }, /functions\[0\]\.size: must match/],
    ['key', (p) => { p.colour = 'red'; }, /the profile: unknown key "colour"/],
    ['none', (p) => { p.functions = []; }, /functions: must NOT have fewer than 1 items/],
    ['needs', (p) => { delete p.functions.find((f) => f.role === 'alloc')!.size; }, /role alloc needs "size"/],
    ['twice', (p) => { p.functions.push({ ...p.functions[0]! }); }, /listed twice/],
  ];
  for (const [name, spoil, re] of cases) {
    const p = structuredClone(good);
    spoil(p);
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(p));
    assert.throws(() => loadProfile(file), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, new RegExp(`^allocator profile ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    }, name);
  }
});

test('analyze --format json fits the generated AnalysisResult schema', () => {
  const schema = JSON.parse(readFileSync(join(root, 'docs/analysis-result.schema.json'), 'utf8')) as object;
  const validate = new Ajv({ allErrors: true }).compile(schema);
  for (const f of ['test/fixtures/apr-pool-debug.httpd-1child.log.gz', 'test/fixtures/nginx-debug.1worker.log.gz', 'test/fixtures/lstrace/scenario.lstrace']) {
    const r = cliSync(['analyze', f, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(validate(JSON.parse(r.stdout)), `${f}: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
});
