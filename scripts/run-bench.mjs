// Runs every benchmark script bench/*.bench.ts (or those matching the arguments) in turn.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// `--flag` arguments go to the scripts (`npm run bench -- agent --quick`); the others pick them
const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts') || f.endsWith('.bench.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
let status = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(root, 'bench', f), ...flags], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
