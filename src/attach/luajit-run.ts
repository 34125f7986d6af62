// `attach --allocator luajit`: LuaJIT's GC heap has its own tracer (native/luajit, src/luajit),
// because its allocator is found at run time through the VM's own structures, not by symbol.
// This runs it over the chosen processes and reports like every other attach.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLuajit } from '../luajit/attach-luajit.js';
import { descendants } from '../proc/processes.js';
import { reportTrace } from './report.js';
import { onMarkerSignal } from './marker-signal.js';
import type { AttachOutput } from './attach.js';

export interface LuajitRunOptions {
  pids: number[];
  children: boolean;
  durationMs: number;
  output?: string;
  report: boolean;
  /** The report's format (an analysis format, reports/formats.ts). */
  format: string;
  top: number;
}

export async function attachLuajitCommand(o: LuajitRunOptions, ui: AttachOutput, stop: AbortSignal): Promise<void> {
  const pids = o.children ? [...new Set(o.pids.flatMap((p) => [p, ...descendants(p)]))] : o.pids;
  const tmpDir = o.output ? undefined : mkdtempSync(join(tmpdir(), 'leakscope-luajit-'));
  const out = o.output ?? join(tmpDir!, 'luajit.lstrace');
  // SIGUSR1: a marker for every traced process (ignored until the trace is open).
  let mark: ((label: string) => void) | undefined;
  const markers = onMarkerSignal((label) => {
    if (!mark) return;
    try {
      mark(label);
      ui.note(`marker "${label}"`);
    } catch {
      // the trace was closed between the tracer's end and our return: nothing to mark
    }
  });
  try {
    ui.note(`tracing the LuaJIT GC heap of ${pids.length} process(es) for ${o.durationMs / 1000}s; Ctrl-C to stop early`);
    const r = await attachLuajit({ pids, durationMs: o.durationMs, out, signal: stop, onMarkable: (m) => (mark = m) });
    mark = undefined;
    ui.stopped?.();
    for (const w of r.warnings) ui.note(`warning: ${w}`);
    if (o.output) ui.note(`trace written to ${o.output} (${r.events} events, ${r.lost} lost)`);
    if (o.report) ui.result(await reportTrace(out, { format: o.format, top: o.top, warnings: r.warnings }));
  } finally {
    markers.off();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}
