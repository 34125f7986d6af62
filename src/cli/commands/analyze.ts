// `leakscope analyze FILE...` — reads traces or logs, folds them, and reports what leaks:
// per process a verdict, the top sites, pool classes and live pools. Text or JSON.
// The implementation (analyze-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { AnalyzeOpts } from './analyze-run.js';
import { choiceOption, intOption, pidOption } from '../options.js';
import { ANALYSIS_FORMATS, formatNames } from '../../reports/formats.js';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('find what leaks: per-process verdicts, top allocation sites, pool classes and live pools')
    .argument('<files...>', 'leakscope traces (.lstrace) or logs leakscope reads (APR pool debug, nginx debug, ...), also .gz/.zst')
    .addOption(intOption('--top <n>', 'allocation sites shown per process', 1, 1_000_000, 20))
    .addOption(pidOption('--pid <pid>', 'only this process'))
    .option('--min-age <age>', 'only allocations at least this old at the end: 30s, 5m, 2h (or a number of events for logs without a clock)')
    .option('--suppress <file>', 'LSan-style suppressions: lines "leak:PATTERN" drop sites with a matching frame')
    .option('--from <name>', 'read the files as this input format instead of detecting it')
    .addOption(choiceOption('--format <format>', 'what to print', formatNames(ANALYSIS_FORMATS.filter((f) => !f.needsWindow)), 'text'))
    .action(guard(async (files: string[], o: AnalyzeOpts) => {
      const { analyzeCommand } = await loadCommand('analyze', () => import('./analyze-run.js'));
      await analyzeCommand(files, o);
    }));
}
