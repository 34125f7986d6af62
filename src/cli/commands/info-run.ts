// `leakscope info TRACE...` — what a trace (or any input leakscope reads) holds: metadata,
// event counts by kind, processes, time span, chunks and warnings. Text or JSON.
// Registered by commands/info.ts, which loads this module only when the command runs.

import { UserError } from '../../errors.js';
import type { StartProgress } from '../../progress.js';
import { startProgress } from '../progress.js';
import { terminalLines } from '../../reports/terminal.js';
import { safeJson } from '../../reports/json.js';
import { readInputs } from '../../sources/open.js';
import type { InputStats } from '../../sources/open.js';
import { SummarySink } from '../../trace/summary.js';
import type { EventSummary } from '../../trace/summary.js';
import type { TraceMeta } from '../../model/events.js';

export interface FileInfo extends EventSummary {
  path: string;
  meta: TraceMeta;
  /** Source that read the file ('lstrace' for leakscope traces). */
  source: string;
  compression: string;
  bytes: number;
  chunks?: number;
  badRecords: number;
  warnings: string[];
}

export async function fileInfo(path: string, opts: { from?: string; progress?: StartProgress } = {}): Promise<FileInfo> {
  const sink = new SummarySink();
  const { meta, stats } = await readInputs([path], sink, { from: opts.from, progress: opts.progress });
  const st: InputStats = stats[0]!;
  return {
    path,
    meta,
    source: st.source,
    compression: st.compression,
    bytes: st.bytes,
    chunks: st.chunks,
    badRecords: st.badRecords + st.dropped,
    warnings: st.warnings,
    ...sink.summary(),
  };
}

const num = (n: number) => n.toLocaleString('en');

function renderText(i: FileInfo): string {
  const m = i.meta;
  const lines: string[] = [];
  const what = i.source === 'lstrace' ? `leakscope trace, format ${m.format}` : `${i.source} input`;
  const comp = i.compression === 'none' ? '' : `, ${i.compression}-compressed`;
  const chunks = i.chunks === undefined ? '' : `, ${num(i.chunks)} chunks`;
  lines.push(`${i.path}: ${what}${comp}, ${bytes(i.bytes)}${chunks}`);
  lines.push(`  source:    ${m.source}${m.hostname ? ` on ${m.hostname}` : ''}`);
  if (m.command) lines.push(`  command:   ${m.command}`);
  if (m.startWallMs !== undefined) lines.push(`  started:   ${isoTime(m.startWallMs)}`);
  if (m.sampleBytes) lines.push(`  sampling:  one allocation per ~${bytes(m.sampleBytes)} (probability 1 - exp(-size/${m.sampleBytes}))`);
  lines.push(`  clock:     ${m.clock === 'ns' ? 'nanoseconds' : 'event sequence numbers (no timestamps)'}`);
  if (i.firstT !== undefined && i.lastT !== undefined) {
    lines.push(m.clock === 'ns'
      ? `  time span: ${seconds(i.firstT)} .. ${seconds(i.lastT)} (${seconds(i.lastT - i.firstT)})`
      : `  sequence:  ${num(i.firstT)} .. ${num(i.lastT)}`);
  }
  lines.push(`  events:    ${num(i.events)}`);
  for (const [k, n] of Object.entries(i.byKind)) lines.push(`    ${k.padEnd(13)} ${num(n!).padStart(14)}`);
  lines.push(`  processes: ${i.processes.length}`);
  for (const p of i.processes.slice(0, 50)) {
    const exit = p.exitCode === undefined ? '' : `  [exit ${p.exitCode}]`;
    const parent = p.ppid ? ` (parent ${p.ppid})` : '';
    lines.push(`    ${String(p.pid).padStart(8)}${parent}  ${p.command || p.exe || '?'}  — ${num(p.events)} events${exit}`);
  }
  if (i.processes.length > 50) lines.push(`    … ${i.processes.length - 50} more`);
  if (i.badRecords) lines.push(`  bad records: ${num(i.badRecords)}`);
  if (i.warnings.length) {
    lines.push(`  warnings:  ${i.warnings.length}`);
    for (const w of i.warnings) lines.push(`    ${w}`);
  } else {
    lines.push('  warnings:  none');
  }
  // Trace text is untrusted (source, hostname, command, warnings): no control character reaches the terminal.
  return `${terminalLines(lines)}\n`;
}

/** A wall-clock time, or what it is when it is none (the header's value is a claim). */
function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `not a valid time (${String(ms)})` : d.toISOString();
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function seconds(ns: number): string {
  return `${(ns / 1e9).toFixed(3)} s`;
}

export interface InfoOpts {
  format: string;
  from?: string;
}

export async function infoCommand(files: string[], o: InfoOpts): Promise<void> {
  if (o.format !== 'text' && o.format !== 'json') throw new UserError(`--format must be text or json, not "${o.format}"`);
  const infos: FileInfo[] = [];
  for (const f of files) infos.push(await fileInfo(f, { from: o.from, progress: startProgress }));
  if (o.format === 'json') process.stdout.write(`${safeJson({ files: infos })}\n`);
  else process.stdout.write(infos.map(renderText).join('\n'));
}
