// The CLI as users run it: the tsc output of the current sources (no TypeScript compiled at
// start-up, unlike tsx), built into a scratch directory next to links to the package's data
// and modules (docs/ holds the profile schema the profiles are checked against), so that a
// stale dist/ can never be what a bench measures.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './record.js';

/** Builds the CLI under `dir`; returns the path of its main.js. */
export function buildCli(dir: string): string {
  const built = mkdtempSync(join(dir, 'pkg-'));
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', join(built, 'dist')], { stdio: 'inherit' });
  copyFileSync(join(root, 'package.json'), join(built, 'package.json'));
  for (const shared of ['profiles', 'docs', 'node_modules', 'native']) symlinkSync(join(root, shared), join(built, shared));
  // The report's browser bundle is built by npm run build into dist/web.
  if (existsSync(join(root, 'dist/web'))) symlinkSync(join(root, 'dist/web'), join(built, 'dist/web'));
  return join(built, 'dist/cli/main.js');
}
