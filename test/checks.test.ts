// The checks a reader relies on, within `npm test`: the type checker over everything TypeScript
// (src/, test/, bench/: tsconfig.check.json; the report page: web/tsconfig.json) and the linter
// (eslint.config.js). Each fails with the checker's own output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(bin: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(bin, `file://${root}/`)), ...args], { cwd: root, encoding: 'utf8', timeout: 540_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test('the type checker passes on src/, test/ and bench/', { timeout: 600_000 }, () => {
  const r = run('node_modules/typescript/bin/tsc', ['-p', 'tsconfig.check.json']);
  assert.equal(r.status, 0, r.out);
});

test('the type checker passes on the report page (web/)', { timeout: 600_000 }, () => {
  const r = run('node_modules/typescript/bin/tsc', ['-p', 'web/tsconfig.json']);
  assert.equal(r.status, 0, r.out);
});

test('the linter passes, without warnings', { timeout: 600_000 }, () => {
  const r = run('node_modules/eslint/bin/eslint.js', ['--max-warnings', '0', '.']);
  assert.equal(r.status, 0, r.out);
});
