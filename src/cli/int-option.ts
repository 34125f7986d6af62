// A whole-number option of report and export (--pid, --top), so export does not load the HTML report to check one.

import { UserError } from '../errors.js';

export function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  // --top 0 or --pid 0 would silently give an empty report.
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw new UserError(`${name} wants a positive whole number, got "${v}"`);
  return Number(v);
}
