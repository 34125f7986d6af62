// The JSON report: the AnalysisResult itself (documented in docs/json-output.md).

import type { AnalysisResult } from '../analyses/result.js';

export function renderJson(result: AnalysisResult): string {
  // Non-finite numbers have no JSON form: write them as null rather than fail.
  return `${safeJson(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`;
}

// JSON.stringify leaves DEL, the C1 controls (U+009B is a terminal's CSI) and bidi overrides as
// they are; JSON read from a trace is often printed to a terminal, so they are written escaped.
const UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** JSON.stringify with 2-space indentation, and no character a terminal would act on. */
export function safeJson(value: unknown, replacer?: (key: string, v: unknown) => unknown): string {
  return JSON.stringify(value, replacer, 2).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
