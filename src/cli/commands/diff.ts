// `leakscope diff A B` (what grew between two traces) or `leakscope diff A --from T1 --to T2`
// (between two points of one trace: times such as 30s, or marker names).
// The implementation (diff-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { DiffOpts } from './diff-run.js';
import { choiceOption } from '../options.js';
import { DIFF_FORMATS, formatNames } from '../../reports/formats.js';

export function register(program: Command): void {
  program
    .command('diff')
    .description('what grew, by site and by pool: between two traces, or between two points (times or marker names) of one')
    .argument('<a>', 'a trace or log (the "before")')
    .argument('[b]', 'a second trace or log (the "after")')
    .option('--from <point>', 'with one input: the earlier point (e.g. 30s, 1500ms, an event number, or a marker name)')
    .option('--to <point>', 'with one input: the later point (default: the end)')
    .addOption(choiceOption('--format <format>', 'what to write', formatNames(DIFF_FORMATS), 'text'))
    .option('-o, --output <file>', 'write here instead of stdout (- is stdout too)')
    .option('--source <name>', 'read the inputs as this source instead of detecting it')
    .action(guard(async (a: string, b: string | undefined, o: DiffOpts) => {
      const { diffCommand } = await loadCommand('diff', () => import('./diff-run.js'));
      await diffCommand(a, b, o);
    }));
}
