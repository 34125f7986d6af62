// `attach --allocator luajit`: LuaJIT's GC heap has its own tracer (native/luajit, src/luajit),
// because its allocator is found at run time through the VM's own structures, not by symbol.
// This runs it over the chosen processes and reports like every other attach.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLuajit } from '../luajit/attach-luajit.js';
import { descendants } from '../proc/processes.js';
import { renderReport } from './report.js';
import { onMarkerSignal } from './marker-signal.js';

export interface LuajitRunOptions {
  pids: number[];
  children: boolean;
  durationMs: number;
  output?: string;
  report: boolean;
  format: 'text' | 'json';
  top: number;
}

export async function attachLuajitCommand(o: LuajitRunOptions): Promise<void> {
  const pids = o.children ? [...new Set(o.pids.flatMap((p) => [p, ...descendants(p)]))] : o.pids;
  const tmpDir = o.output ? undefined : mkdtempSync(join(tmpdir(), 'leakscope-luajit-'));
  const out = o.output ?? join(tmpDir!, 'luajit.lstrace');
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // SIGUSR1: a marker for every traced process (ignored until the trace is open).
  let mark: ((label: string) => void) | undefined;
  const markers = onMarkerSignal((label) => {
    if (!mark) return;
    try {
      mark(label);
      process.stderr.write(`leakscope: marker "${label}"\n`);
    } catch {
      // the trace was closed between the tracer's end and our return: nothing to mark
    }
  });
  try {
    process.stderr.write(`leakscope: tracing the LuaJIT GC heap of ${pids.length} process(es) for ${o.durationMs / 1000}s; Ctrl-C to stop early\n`);
    const r = await attachLuajit({ pids, durationMs: o.durationMs, out, signal: abort.signal, onMarkable: (m) => (mark = m) });
    mark = undefined;
    for (const w of r.warnings) process.stderr.write(`leakscope: warning: ${w}\n`);
    if (o.output) process.stderr.write(`leakscope: trace written to ${o.output} (${r.events} events, ${r.lost} lost)\n`);
    if (o.report) await renderReport(out, { format: o.format, top: o.top, warnings: r.warnings });
  } finally {
    markers.off();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}
