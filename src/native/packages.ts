// Which system packages the native parts lack (scripts/debian-packages.txt, read by
// scripts/system-packages.mjs, the same list `npm test`, .ci/run and the native build read).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface Missing { pkg: string; role: string; parts: string[]; what: string }

/** Missing build and run packages, by scripts/system-packages.mjs; a reason when it cannot tell. */
export function missingPackages(root: string): Missing[] | string {
  const script = join(root, 'scripts/system-packages.mjs');
  if (!existsSync(script)) return `${script} is missing`;
  const r = spawnSync(process.execPath, [script, 'missing', 'build,run', '--json'], { encoding: 'utf8', timeout: 30_000 });
  try {
    return JSON.parse(r.stdout) as Missing[];
  } catch {
    return (r.stderr || r.error?.message || `exit status ${r.status}`).trim().split('\n')[0]!;
  }
}
