// Renders the self-contained report page: inlined styles and script (bundled from web/ at build
// time), the data as JSON in a non-executed <script> element, and a Content-Security-Policy that
// allows only that one script (by hash) and no network at all.

import { createHash } from 'node:crypto';
import type { ReportData } from './data.js';
import { loadWebAssets } from './assets.js';
import { terminalSafe } from '../terminal.js';

/** JSON that cannot end its <script> element or open a comment, and that survives any JS parser. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Text for HTML: markup characters escaped, control characters shown as stand-ins (terminal.ts). */
export function escapeHtml(s: string): string {
  return terminalSafe(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export async function renderHtml(data: ReportData): Promise<string> {
  const { js, css } = await loadWebAssets();
  // A script element's text ends at the first "</script"; the bundle never holds one, but be sure.
  const script = js.replace(/<\/(script)/gi, '<\\/$1');
  const hash = createHash('sha256').update(script, 'utf8').digest('base64');
  const csp = `default-src 'none'; script-src 'sha256-${hash}'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="leakscope">
<title>${escapeHtml(data.title)}</title>
<style>${css.replace(/<\/(style)/gi, '<\\/$1')}</style>
</head>
<body>
<noscript>This report needs JavaScript to draw its charts.</noscript>
<div id="app"></div>
<script type="application/json" id="leakscope-data">${safeJson(data)}</script>
<script>${script}</script>
</body>
</html>
`;
}
