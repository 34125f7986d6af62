// Renders a DiffResult as text, JSON or a small self-contained HTML table (reports/formats.ts lists them).

import type { DiffResult, DiffRow } from '../analyses/diff.js';
import { escapeHtml } from './html/render.js';
import { formatBytes as bytes } from '../model/units.js';
import { terminalLines } from './terminal.js';
import { safeJson } from './json.js';

function signed(n: number): string {
  return n > 0 ? `+${bytes(n)}` : n < 0 ? bytes(n) : '0';
}

function who(r: DiffRow): string {
  return r.pid !== undefined && r.kind !== 'total' ? `pid ${r.pid} ` : '';
}

export function diffText(d: DiffResult, limit = 40): string {
  const out: string[] = [`What grew from ${d.before} to ${d.after}:`];
  for (const kind of ['total', 'pool', 'site'] as const) {
    const rows = d.rows.filter((r) => r.kind === kind);
    if (rows.length === 0) continue;
    out.push('', kind === 'total' ? 'Totals' : kind === 'pool' ? 'Pool classes' : 'Sites');
    for (const r of rows.slice(0, limit)) {
      const count = r.after.count !== undefined ? `  (${r.before.count ?? 0} → ${r.after.count} blocks)` : '';
      out.push(`  ${signed(r.delta).padStart(12)}  ${bytes(r.before.bytes).padStart(10)} → ${bytes(r.after.bytes).padEnd(10)}  ${who(r)}${r.name}${count}`);
    }
    if (rows.length > limit) out.push(`  … ${rows.length - limit} more`);
  }
  return `${terminalLines(out)}\n`;
}

export function diffJson(d: DiffResult): string {
  return `${safeJson(d)}\n`;
}

export function diffHtml(d: DiffResult): string {
  const rows = d.rows.map((r) => `<tr class="${r.delta > 0 ? 'grew' : r.delta < 0 ? 'shrank' : ''}"><td>${r.kind}</td><td>${escapeHtml(who(r) + r.name)}</td>` +
    `<td class="n">${bytes(r.before.bytes)}</td><td class="n">${bytes(r.after.bytes)}</td><td class="n">${signed(r.delta)}</td>` +
    `<td class="n">${r.before.count ?? ''}</td><td class="n">${r.after.count ?? ''}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>leakscope diff: ${escapeHtml(d.before)} → ${escapeHtml(d.after)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#1d2330}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #dde2ea;text-align:left}
.n{text-align:right;font-variant-numeric:tabular-nums}tr.grew td:nth-child(5){color:#c0392b;font-weight:600}tr.shrank td:nth-child(5){color:#27ae60}</style>
</head><body>
<h1>What grew</h1>
<p>From <b>${escapeHtml(d.before)}</b> to <b>${escapeHtml(d.after)}</b> (${d.mode === 'traces' ? 'two traces, summed over processes' : 'two points of one trace'}).</p>
<table><thead><tr><th>kind</th><th>name</th><th class="n">before</th><th class="n">after</th><th class="n">change</th><th class="n">blocks before</th><th class="n">blocks after</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
