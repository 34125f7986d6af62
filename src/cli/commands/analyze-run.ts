// `leakscope analyze FILE...` — reads traces or logs, folds them, and reports what leaks:
// per process a verdict, the top sites, pool classes and live pools. Text or JSON.
// Registered by commands/analyze.ts, which loads this module only when the command runs.

import { UserError } from '../../errors.js';
import { startProgress } from '../progress.js';
import { analyzeInputs } from '../../pipeline/analyze-files.js';
import { parseAge } from '../../analyses/duration.js';
import { ANALYSIS_FORMATS, formatByName } from '../../reports/formats.js';
import { warnIfDamaged } from '../damage.js';

export interface AnalyzeOpts {
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

export async function analyzeCommand(files: string[], o: AnalyzeOpts): Promise<void> {
  if (o.format !== 'text' && o.format !== 'json') throw new UserError(`--format must be text or json, not "${o.format}"`);
  const top = positiveInt('--top', o.top);
  const pid = o.pid === undefined ? undefined : positiveInt('--pid', o.pid);
  const minAge = o.minAge === undefined ? undefined : parseAge(o.minAge);
  const { result, damaged } = await analyzeInputs(files, {
    top, pid, minAge, suppress: o.suppress, from: o.from, progress: startProgress,
  });
  if (pid !== undefined && result.processes.length === 0) throw new UserError(`no process ${pid} in the input`);
  process.stdout.write(await formatByName(ANALYSIS_FORMATS, o.format).render({ result }));
  warnIfDamaged(damaged);
}
