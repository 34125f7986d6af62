// `leakscope run [options] -- CMD ARGS...`: runs CMD under the in-process recorder, then
// symbolizes the trace and prints the leak summary. Exits with CMD's status.
// The implementation (run-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { RunOptions } from './run-run.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('run a command under the in-process recorder, then print its leaks')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--sample <bytes>', 'record an allocation of n bytes with probability 1-exp(-n/BYTES) (low overhead)')
    .option('--depth <n>', 'stack depth limit', '64')
    .option('-o, --output <file>', 'FILE.lstrace: the trace; FILE.html, .json or .txt: the report (HTML, JSON or text) instead of the summary on stdout')
    .option('--trace <file>', 'trace file to write (default leakscope-DATE-TIME.lstrace)')
    .option('--report <file>', 'write the report to FILE (its format from the extension as for -o, else --format)')
    .option('--format <fmt>', 'summary format: text or json', 'text')
    .option('--no-summary', 'only record and symbolize; print no summary')
    .addHelpText('after', '\nMarkers: SIGUSR2 to a traced process (kill -USR2 PID, or `leakscope snapshot PID`) flushes its\nrecording and drops a marker "SIGUSR2 #N" ("snapshot #N") on its timeline; `leakscope mark PID LABEL`\nnames one. Reports draw markers and `diff --from/--to` take them as range edges.\n')
    .action(guard(async (command: string[], opts: RunOptions) => {
      const { runCommand } = await loadCommand('run', () => import('./run-run.js'));
      await runCommand(command, opts);
    }));
}
