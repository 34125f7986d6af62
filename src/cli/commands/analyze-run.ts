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
  top: number;
  pid?: number;
  minAge?: string;
  suppress?: string;
  from?: string;
  format: string;
}

export async function analyzeCommand(files: string[], o: AnalyzeOpts): Promise<void> {
  const { top, pid } = o;
  const minAge = o.minAge === undefined ? undefined : parseAge(o.minAge);
  const { result, damaged } = await analyzeInputs(files, {
    top, pid, minAge, suppress: o.suppress, from: o.from, progress: startProgress,
  });
  if (pid !== undefined && result.processes.length === 0) throw new UserError(`no process ${pid} in the input`);
  process.stdout.write(await formatByName(ANALYSIS_FORMATS, o.format).render({ result }));
  warnIfDamaged(damaged);
}
