// `leakscope import FILE... -o OUT.lstrace [--from NAME]` — any input leakscope reads
// (traces, APR/nginx logs, ...; plain, .gz or .zst) → one leakscope trace. The output is
// written beside its final name and renamed into place only when complete.
// The implementation (import-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { ImportOpts } from './import-run.js';

export function register(program: Command): void {
  program
    .command('import')
    .description('convert inputs (traces, APR pool-debug / nginx debug logs, ...; plain, .gz or .zst) into one leakscope trace')
    .argument('<files...>', 'input files, read in order into one trace')
    .requiredOption('-o, --output <trace>', 'output trace file (.lstrace), or - for stdout')
    .option('--from <name>', 'read the inputs as this format instead of detecting it')
    .action(guard(async (files: string[], o: ImportOpts) => {
      const { importCommand } = await loadCommand('import', () => import('./import-run.js'));
      await importCommand(files, o);
    }));
}
