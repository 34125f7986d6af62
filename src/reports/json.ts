// The JSON report: the AnalysisResult itself (documented in docs/json-output.md).

import type { AnalysisResult } from '../analyses/result.js';

export function renderJson(result: AnalysisResult): string {
  // Non-finite numbers have no JSON form: write them as null rather than fail.
  return `${JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}
