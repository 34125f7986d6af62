// The report at the end of `attach`: the trace is symbolized (src/symbols) and goes through the
// same analyses and renderers as `leakscope analyze`.

import { analyzeFiles } from '../pipeline/analyze-files.js';
import { renderJson } from '../reports/json.js';
import { renderText } from '../reports/text.js';
import { symbolizeTrace } from '../symbols/symbolize.js';

export interface ReportOptions {
  format: 'text' | 'json';
  top: number;
  warnings: string[];
}

export async function renderReport(tracePath: string, opts: ReportOptions): Promise<void> {
  await symbolizeTrace(tracePath, { onWarning: (m) => opts.warnings.push(m) });
  const result = await analyzeFiles([tracePath], { top: opts.top });
  result.warnings = [...opts.warnings, ...result.warnings];
  process.stdout.write(opts.format === 'json' ? renderJson(result) : renderText(result));
}
