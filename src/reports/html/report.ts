// `leakscope report`'s output: one self-contained HTML page.

import type { AnalysisResult } from '../../analyses/result.js';
import type { WindowState } from '../../analyses/window.js';
import { buildReportData, DEFAULT_LIMITS } from './data.js';
import type { ReportLimits } from './data.js';
import { renderHtml } from './render.js';

export async function htmlReport(result: AnalysisResult, window: WindowState | undefined, limits: ReportLimits = DEFAULT_LIMITS): Promise<string> {
  return renderHtml(buildReportData(result, window, limits));
}
