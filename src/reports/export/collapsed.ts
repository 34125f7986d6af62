// Collapsed stacks (`root;...;leaf VALUE`, one line per stack), as flamegraph.pl and most flame
// graph tools read them. Processes are told apart by a leading `pid N` frame when there are several.

import type { WindowState } from '../../analyses/window.js';
import { exportStacks, frameName, oneLine } from './stacks.js';

export type CollapsedValue = 'inuse' | 'alloc';

export function collapsed(w: WindowState, value: CollapsedValue = 'inuse'): string {
  const many = w.processes.length > 1;
  const lines: string[] = [];
  for (const x of exportStacks(w)) {
    const v = Math.round(value === 'inuse' ? x.inuseBytes : x.allocBytes);
    if (v <= 0) continue;
    const names = x.frames.length ? x.frames.map((f) => oneLine(frameName(f)).replace(/;/g, ':')).reverse() : ['(no stack)'];
    if (many) names.unshift(`pid ${x.pid}`);
    lines.push(`${names.join(';')} ${v}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
