// `leakscope info TRACE...` — what a trace (or any input leakscope reads) holds: metadata,
// event counts by kind, processes, time span, chunks and warnings. Text or JSON.
// The implementation (info-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { InfoOpts } from './info-run.js';
import { choiceOption } from '../options.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('show what a trace (or log) holds: metadata, events by kind, processes, time span, chunks, warnings')
    .argument('<files...>', 'leakscope traces (.lstrace, also .gz/.zst) or other inputs leakscope reads')
    .addOption(choiceOption('--format <format>', 'what to print', ['text', 'json'], 'text'))
    .option('--from <name>', 'read the files as this input format instead of detecting it')
    .action(guard(async (files: string[], o: InfoOpts) => {
      const { infoCommand } = await loadCommand('info', () => import('./info-run.js'));
      await infoCommand(files, o);
    }));
}
