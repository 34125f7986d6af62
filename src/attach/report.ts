// The report at the end of `attach`: the trace is symbolized (src/symbols) and goes through the
// same analyses and output formats (reports/formats.ts) as `leakscope analyze`.

import { analyzeFiles } from '../pipeline/analyze-files.js';
import { ANALYSIS_FORMATS, formatByName } from '../reports/formats.js';
import { symbolizeTrace } from '../symbols/symbolize.js';

export interface ReportOptions {
  /** An analysis format's name (text, json). */
  format: string;
  top: number;
  warnings: string[];
}

/** The report of an attach trace, in `opts.format`. */
export async function reportTrace(tracePath: string, opts: ReportOptions): Promise<string | Uint8Array> {
  await symbolizeTrace(tracePath, { onWarning: (m) => opts.warnings.push(m) });
  const result = await analyzeFiles([tracePath], { top: opts.top });
  result.warnings = [...opts.warnings, ...result.warnings];
  return formatByName(ANALYSIS_FORMATS, opts.format).render({ result });
}
