// The summary `leakscope run` prints after the command ends: analyze's text report when the
// reports layer provides one, else a compact list of what is still allocated, per process.

import type { AnalysisResult } from '../analyses/result.js';
import { frameLabel } from '../model/events.js';
import { terminalLines } from '../reports/terminal.js';
import { safeJson } from '../reports/json.js';

type TextRenderer = (r: AnalysisResult) => string;

async function reportsText(): Promise<TextRenderer | undefined> {
  const mod = '../reports/text.js';
  try {
    const m = (await import(mod)) as Record<string, unknown>;
    for (const name of ['renderText', 'textReport', 'formatText']) {
      if (typeof m[name] === 'function') return m[name] as TextRenderer;
    }
  } catch {
    // not in this build
  }
  return undefined;
}

function bytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function compactText(r: AnalysisResult, top = 10): string {
  const out: string[] = [];
  const est = r.estimated ? ' (estimated from samples)' : '';
  for (const p of r.processes) {
    const o = p.outstanding;
    out.push(`pid ${p.pid} ${p.command || p.exe}${p.exited ? ` (exit ${p.exitCode ?? '?'})` : ''}: ` +
      `${bytes(o.heapBytes)} in ${o.heapCount} heap blocks, ${bytes(o.poolBytes)} in ${o.poolCount} pool allocations still allocated${est}; ${p.verdict.verdict}`);
    for (const s of p.sites.slice(0, top)) {
      const where = s.stack.slice(0, 3).map(frameLabel).join(' <- ');
      out.push(`  ${bytes(s.bytes).padStart(10)} in ${String(s.count).padStart(6)} from ${s.label}${where && where !== s.label ? `  [${where}]` : ''}`);
    }
  }
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return `${terminalLines(out)}\n`;
}

export async function renderSummary(r: AnalysisResult, format: 'text' | 'json'): Promise<string> {
  if (format === 'json') return `${safeJson(r)}\n`;
  const text = await reportsText();
  return text ? text(r) : compactText(r);
}
