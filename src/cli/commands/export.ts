// `leakscope export FILE... --to pprof|speedscope|collapsed -o OUT`: full-stack heap profiles for
// other tools (go tool pprof, speedscope, flamegraph.pl).
// The implementation (export-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { ExportOpts } from './export-run.js';
import { formatNames, PROFILE_FORMATS } from '../../reports/formats.js';

const FORMATS = formatNames(PROFILE_FORMATS);

export function register(program: Command): void {
  program
    .command('export')
    .description('export heap profiles by full stack: pprof (go tool pprof), speedscope JSON, collapsed stacks')
    .argument('<files...>', 'traces (.lstrace) or logs the input layer reads')
    .requiredOption('--to <format>', `one of ${FORMATS.join(', ')}`)
    .requiredOption('-o, --output <file>', 'the file to write, or - for stdout')
    .option('--from <source>', 'read the inputs as this source instead of detecting it')
    .option('--pid <pid>', 'only this process')
    .option('--value <what>', 'collapsed: inuse (outstanding bytes, default) or alloc (allocated bytes)', 'inuse')
    .action(guard(async (files: string[], o: ExportOpts) => {
      const { exportCommand } = await loadCommand('export', () => import('./export-run.js'));
      await exportCommand(files, o);
    }));
}
