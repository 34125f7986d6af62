// `leakscope setup` — builds the native parts now (the recorder, BPF loaders, unwinder), rather
// than on the first command that needs one: for a root-owned install (`sudo leakscope setup`
// builds into the package, for every user), or to see a build's problems up front.
// The implementation (setup-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { SetupOpts } from './setup-run.js';

export function register(program: Command): void {
  program
    .command('setup')
    .description("build the native parts (recorder, BPF loaders, unwinder) now, into the package's directory when writable, else the per-user cache; says what the machine lacks")
    .option('--rebuild', 'build them again even when built (after upgrading the system libraries)')
    .action(guard(async (o: SetupOpts) => {
      const { setupCommand } = await loadCommand('setup', () => import('./setup-run.js'));
      setupCommand(o);
    }));
}
