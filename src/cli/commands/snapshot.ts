// `leakscope snapshot PID`: asks a process running under `leakscope run` to write out what it
// has recorded so far (SIGUSR2; the recorder flushes every buffer at once).
// The implementation (snapshot-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';

export function register(program: Command): void {
  program
    .command('snapshot')
    .description('make a process running under `leakscope run` write out its recording now, with a marker "snapshot #N" (a plain SIGUSR2 does the same, marker "SIGUSR2 #N")')
    .argument('<pid>', 'process id')
    .action(guard(async (pidArg: string) => {
      const { snapshotCommand } = await loadCommand('snapshot', () => import('./snapshot-run.js'));
      await snapshotCommand(pidArg);
    }));
}
