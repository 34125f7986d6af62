// What every export writes: per process, per stack, allocated and outstanding totals with the
// stack's frames (leaf first), from the window grid (src/analyses/window.ts).

import type { Frame } from '../../model/events.js';
import { addressLabel } from '../../model/events.js';
import type { WindowState } from '../../analyses/window.js';
import { stackTotals } from '../../analyses/window.js';
import type { StackTotals } from '../../analyses/window.js';

export interface ExportStack extends StackTotals {
  pid: number;
  /** Leaf first. Empty when the source knew no stack. */
  frames: Frame[];
}

export function exportStacks(w: WindowState): ExportStack[] {
  const out: ExportStack[] = [];
  for (const p of w.processes) {
    for (const t of stackTotals(p)) out.push({ ...t, pid: p.pid, frames: p.stacks.get(t.stack) ?? [] });
  }
  out.sort((a, b) => a.pid - b.pid || b.inuseBytes - a.inuseBytes || b.allocBytes - a.allocBytes);
  return out;
}

/** A frame's name for formats with one name per frame: the function, else file:line, else the address. */
export function frameName(f: Frame): string {
  if (f.fn) return f.fn;
  if (f.file) return f.line ? `${f.file}:${f.line}` : f.file;
  return addressLabel(f);
}

/** Names come from the trace: no control characters in line-based formats. */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, ' ');
}
