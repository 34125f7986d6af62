// `leakscope analyze FILE...` — reads traces or logs, folds them, and reports what leaks:
// per process a verdict, the top sites, pool classes and live pools. Text or JSON.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { UserError } from '../errors.js';
import { analyzeFiles } from '../../analyses/pipeline.js';
import { parseAge } from '../../analyses/duration.js';
import { renderText } from '../../reports/text.js';
import { renderJson } from '../../reports/json.js';
import { warnIfDamaged } from '../damage.js';

interface Opts {
  top: string;
  pid?: string;
  minAge?: string;
  suppress?: string;
  from?: string;
  format: string;
}

function positiveInt(name: string, v: string): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new UserError(`${name} must be a positive whole number, not "${v}"`);
  }
  return Number(v);
}

export function register(program: Command): void {
  program
    .command('analyze')
    .description('find what leaks: per-process verdicts, top allocation sites, pool classes and live pools')
    .argument('<files...>', 'leakscope traces (.lstrace) or logs leakscope reads (APR pool debug, nginx debug, ...), also .gz/.zst')
    .option('--top <n>', 'allocation sites shown per process', '20')
    .option('--pid <pid>', 'only this process')
    .option('--min-age <age>', 'only allocations at least this old at the end: 30s, 5m, 2h (or a number of events for logs without a clock)')
    .option('--suppress <file>', 'LSan-style suppressions: lines "leak:PATTERN" drop sites with a matching frame')
    .option('--from <name>', 'read the files as this input format instead of detecting it')
    .option('--format <format>', 'text or json', 'text')
    .action(guard(async (files: string[], o: Opts) => {
      if (o.format !== 'text' && o.format !== 'json') throw new UserError(`--format must be text or json, not "${o.format}"`);
      const top = positiveInt('--top', o.top);
      const pid = o.pid === undefined ? undefined : positiveInt('--pid', o.pid);
      const minAge = o.minAge === undefined ? undefined : parseAge(o.minAge);
      const result = await analyzeFiles(files, {
        top, pid, minAge, suppress: o.suppress, from: o.from, progress: process.stderr.isTTY,
      });
      if (pid !== undefined && result.processes.length === 0) throw new UserError(`no process ${pid} in the input`);
      process.stdout.write(o.format === 'json' ? renderJson(result) : renderText(result));
      warnIfDamaged(result.warnings);
    }));
}
