// `leakscope run [options] -- CMD ARGS...`: runs CMD under the in-process recorder, then
// symbolizes the trace and prints the leak summary. Exits with CMD's status.
// Registered by commands/run.ts, which loads this module only when the command runs.

import { lstatSync, rmSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { startProgress } from '../progress.js';
import { ExitError } from '../errors.js';
import { findRecorderLibrary } from '../../recorder/library.js';
import { runRecorded } from '../../recorder/launch.js';
import { renderSummary } from '../../recorder/summary.js';
import { allocatorWarnings, markEnded, signalName } from '../../recorder/outcome.js';
import { symbolizeTrace } from '../../symbols/symbolize.js';
import { analyzeFiles } from '../../pipeline/analyze-files.js';
import type { AnalysisResult } from '../../analyses/result.js';
import { OutputFile, writeOutputFile } from '../../io/output-file.js';
import { terminalSafe } from '../../reports/terminal.js';
import { notBuiltHint } from '../../doctor/not-built.js';
import { ensureNative } from '../../native/ensure.js';

export interface RunOptions {
  sample?: string;
  depth?: string;
  output?: string;
  trace?: string;
  report?: string;
  format: string;
  summary: boolean;
}

function positiveInt(v: string | undefined, what: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UserError(`${what} must be a whole number from 1 to ${max}, not "${v}"`);
  return Number(v);
}

function defaultTrace(): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  return `leakscope-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.lstrace`;
}

type ReportKind = 'html' | 'json' | 'text';
const REPORT_EXT: Record<string, ReportKind> = { '.html': 'html', '.htm': 'html', '.json': 'json', '.txt': 'text' };

/** `-o` names the trace or the report by its extension, as users write either. */
function outputs(opts: RunOptions): { trace?: string; report?: { path: string; kind: ReportKind } } {
  const fmt = opts.format as ReportKind;
  const report = opts.report ? { path: opts.report, kind: REPORT_EXT[extname(opts.report).toLowerCase()] ?? fmt } : undefined;
  if (opts.trace === '-') throw new UserError('--trace -: the trace cannot go to stdout (every traced process appends to it, and stdout is the command\'s); give a file name');
  if (!opts.output) return { trace: opts.trace, report };
  // `-o -`, as everywhere: stdout, here the report in --format (what is printed by default).
  if (opts.output === '-') {
    if (report) throw new UserError('give the report file once: -o FILE.html|.json|.txt or --report FILE');
    return { trace: opts.trace, report: { path: '-', kind: fmt } };
  }
  const ext = extname(opts.output).toLowerCase();
  if (ext === '.lstrace') {
    if (opts.trace) throw new UserError('give the trace file once: -o FILE.lstrace or --trace FILE');
    return { trace: opts.output, report };
  }
  const kind = REPORT_EXT[ext];
  if (!kind) throw new UserError(`-o ${opts.output}: say which file it is by its extension: .lstrace for the trace, .html, .json or .txt for the report`);
  if (report) throw new UserError('give the report file once: -o FILE.html|.json|.txt or --report FILE');
  return { trace: opts.trace, report: { path: opts.output, kind } };
}

/** Processes that made no allocation call we could see: said on stderr and in the report's warnings. */
function warnAllocator(analysis: AnalysisResult): void {
  for (const w of allocatorWarnings(analysis)) {
    process.stderr.write(`leakscope: ${terminalSafe(w)}\n`);
    analysis.warnings.push(w);
  }
}

export async function runCommand(command: string[], opts: RunOptions): Promise<void> {
  if (opts.format !== 'text' && opts.format !== 'json') throw new UserError(`--format must be text or json, not "${opts.format}"`);
  const out = outputs(opts);
  const sampleBytes = positiveInt(opts.sample, '--sample', 2 ** 40);
  const depth = positiveInt(opts.depth, '--depth', 256);
  if (process.env.LEAKSCOPE_LIB && !findRecorderLibrary()) {
    throw new UserError(`LEAKSCOPE_LIB=${process.env.LEAKSCOPE_LIB}: no such file (unset it to use leakscope's own recorder; ${notBuiltHint('recorder')})`);
  }
  if (!process.env.LEAKSCOPE_LIB) ensureNative(['recorder']); // built on first use
  const library = findRecorderLibrary();
  if (!library) throw new UserError(`the recorder library is not built: ${notBuiltHint('recorder')}`);
  const trace = resolve(out.trace ?? defaultTrace());
  if (out.report && out.report.path !== '-') {
    if (resolve(out.report.path) === trace) throw new UserError(`${out.report.path}: is also the trace file; give the report another name`);
    OutputFile.check(out.report.path, { inputs: [trace] });
  }

  let result;
  try {
    result = await runRecorded({ command, library, trace, sampleBytes, depth });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Nothing ran: the header-only trace would be a stray empty file (a device or FIFO named
    // as the trace is no file of ours to remove).
    if (lstatSync(trace, { throwIfNoEntry: false })?.isFile()) rmSync(trace, { force: true });
    // The shell's statuses: 127 not found, 126 found but not executable.
    if (e.code === 'ENOENT') throw new ExitError(`${command[0]}: command not found (check the name, or give its path)`, 127);
    if (e.code === 'EACCES') throw new ExitError(`${command[0]}: permission denied (not an executable file?)`, 126);
    throw err;
  }
  const status = result.status;
  if (result.signal) {
    // Said in one line, and in the trace: a SIGKILL leaves the recorder no chance to write EXIT.
    process.stderr.write(`leakscope: ${command[0]} (pid ${result.pid}) was killed by ${signalName(result.signal)}; its recording runs up to then\n`);
  }
  // What the report says of the command: how it ended, and whether it allocated where we look.
  const finish = (analysis: AnalysisResult): void => {
    markEnded(analysis, result.pid, status);
    warnAllocator(analysis);
  };

  if (process.stderr.isTTY) process.stderr.write('leakscope: symbolizing...\n');
  const sym = await symbolizeTrace(trace);
  for (const w of sym.warnings) process.stderr.write(`leakscope: ${terminalSafe(w)}\n`);
  if (sym.chunks === 0) {
    process.stderr.write(`leakscope: ${command[0]} recorded nothing: a statically linked program, or one that drops LD_PRELOAD, cannot be traced by \`leakscope run\` (try \`leakscope attach\`)\n`);
  }
  process.stderr.write(`leakscope: trace written to ${trace}\n`);

  if (out.report?.kind === 'html') {
    // Loaded here only: the page's bundled scripts are large and most runs print text.
    const { analyzeWithWindow } = await import('../../pipeline/window-run.js');
    const { ANALYSIS_FORMATS, formatByName } = await import('../../reports/formats.js');
    const path = out.report.path === '-' ? '-' : resolve(out.report.path);
    const run = await analyzeWithWindow([trace], { progress: startProgress });
    if (!run.result) throw new UserError(`${trace}: nothing to report`);
    finish(run.result);
    const html = await formatByName(ANALYSIS_FORMATS, 'html').render({ result: run.result, window: run.window });
    writeOutputFile(path, html, { inputs: [trace] });
    if (path !== '-') process.stderr.write(`leakscope: wrote ${path} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB)\n`);
  } else if (out.report) {
    const analysis = await analyzeFiles([trace], { progress: startProgress });
    finish(analysis);
    const text = await renderSummary(analysis, out.report.kind);
    if (out.report.path === '-') process.stdout.write(text);
    else writeOutputFile(out.report.path, text, { inputs: [trace] });
  } else if (opts.summary) {
    const analysis = await analyzeFiles([trace], { progress: startProgress });
    finish(analysis);
    process.stdout.write(await renderSummary(analysis, opts.format));
  }
  process.exitCode = status;
}
