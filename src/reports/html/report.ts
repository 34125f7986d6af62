// `leakscope report`'s output: one self-contained HTML page.

import { writeFileAtomic } from '../atomic-write.js';
import type { AnalysisResult } from '../../analyses/result.js';
import type { WindowState } from '../../analyses/window.js';
import { buildReportData, DEFAULT_LIMITS } from './data.js';
import type { ReportLimits } from './data.js';
import { renderHtml } from './render.js';

export async function htmlReport(result: AnalysisResult, window: WindowState | undefined, limits: ReportLimits = DEFAULT_LIMITS): Promise<string> {
  return renderHtml(buildReportData(result, window, limits));
}

export async function writeHtmlReport(path: string, result: AnalysisResult, window: WindowState | undefined, limits?: ReportLimits): Promise<number> {
  const html = await htmlReport(result, window, limits);
  await writeFileAtomic(path, html);
  return Buffer.byteLength(html);
}
