// Checks of the system packages leakscope uses (scripts/debian-packages.txt, the same list
// `npm test`, .ci/run and the native build read): which build and run ones are missing, what
// that costs, and the one command that installs them.
import { check, type Check } from './check.js';
import { buildCommand } from '../native/locate.js';
import type { Missing } from '../native/packages.js';

export function packageChecks(root: string, miss: Missing[] | string): Check[] {
  if (typeof miss === 'string') {
    return [check({ id: 'packages', group: 'system', status: 'warn', title: 'system packages: not checked', detail: miss })];
  }
  const build = miss.filter((m) => m.role === 'build');
  const run = miss.filter((m) => m.role === 'run');
  const names = (ms: Missing[]) => ms.map((m) => m.pkg).join(' ');
  const parts = [...new Set(build.flatMap((m) => m.parts))].map((p) => `native/${p}`);
  return [
    check({
      id: 'packages-build', group: 'system', status: build.length ? 'warn' : 'ok',
      title: build.length ? `build packages: missing ${names(build)}` : 'build packages: all there',
      detail: build.length
        ? `without them ${parts.join(', ')} cannot be built (${build.map((m) => `${m.pkg}: ${m.what}`).join('; ')}); analysis of files works without them`
        : 'the native parts can be built (scripts/debian-packages.txt)',
      fix: build.length ? `apt-get install -y ${names(build)}, then ${buildCommand(root)}` : undefined,
    }),
    check({
      id: 'packages-run', group: 'system', status: run.length ? 'info' : 'ok',
      title: run.length ? `optional packages: missing ${names(run)}` : 'optional packages: all there',
      detail: run.length ? run.map((m) => `${m.pkg}: ${m.what}`).join('; ') : 'the tools leakscope uses when present are installed',
      fix: run.length ? `apt-get install -y ${names(run)}` : undefined,
    }),
  ];
}
