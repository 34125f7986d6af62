// `leakscope snapshot PID`: asks a process running under `leakscope run` to write out what it
// has recorded so far (SIGUSR2; the recorder flushes every buffer at once).
// The implementation (snapshot-run.ts) is loaded only when the command runs.

import { Argument, type Command } from 'commander';
import { MAX_PID, parseWhole } from '../options.js';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';

export function register(program: Command): void {
  program
    .command('snapshot')
    .description('make a process running under `leakscope run` write out its recording now, with a marker "snapshot #N" (a plain SIGUSR2 does the same, marker "SIGUSR2 #N")')
    .addArgument(new Argument('<pid>', 'process id').argParser((v: string) => parseWhole(v, 1, MAX_PID)))
    .action(guard(async (pidArg: number) => {
      const { snapshotCommand } = await loadCommand('snapshot', () => import('./snapshot-run.js'));
      await snapshotCommand(pidArg);
    }));
}
