// `leakscope import FILE... -o OUT.lstrace [--from NAME]` — any input leakscope reads
// (traces, APR/nginx logs, ...; plain, .gz or .zst) → one leakscope trace. The output is
// written beside its final name and renamed into place only when complete.
// Registered by commands/import.ts, which loads this module only when the command runs.

import { renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { outputError as writeError } from '../output.js';
import { readInputs } from '../../sources/open.js';
import { TraceWriter } from '../../trace/writer.js';
import type { Event, EventSink } from '../../model/events.js';

export interface ImportResult {
  events: number;
  badRecords: number;
  warnings: string[];
  /** Those of `warnings` that say an input is damaged. */
  damaged: string[];
  bytes: number;
}

/** Imports `inputs` into the trace `out` ('-' for stdout). */
export async function importFiles(inputs: string[], out: string, opts: { from?: string; progress?: boolean } = {}): Promise<ImportResult> {
  if (out !== '-') refuseOverwritingInput(inputs, out);
  const tmp = out === '-' ? undefined : join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  let writer: TraceWriter | undefined;
  // The header needs the metadata, known once the first input has been opened.
  const sink: EventSink = {
    event(e: Event) {
      writer!.event(e);
    },
  };
  // Interrupted (Ctrl-C, kill): the half-written file goes, then the signal ends us as it would have.
  const onSignal = (sig: NodeJS.Signals) => {
    if (tmp !== undefined) rmSync(tmp, { force: true });
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.kill(process.pid, sig);
  };
  if (tmp !== undefined) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    const { stats } = await readInputs(inputs, sink, {
      from: opts.from,
      progress: opts.progress,
      onMeta: (meta) => {
        writer = tmp === undefined ? TraceWriter.toFd(1, meta) : TraceWriter.create(tmp, meta);
      },
    });
    await writer!.close();
    if (tmp !== undefined) renameSync(tmp, out);
    return {
      events: writer!.events,
      badRecords: stats.reduce((a, s) => a + s.badRecords, 0),
      warnings: stats.flatMap((s) => s.warnings),
      damaged: stats.flatMap((s) => s.damaged),
      bytes: writer!.bytes,
    };
  } catch (err) {
    if (writer) await writer.close().catch(() => {});
    if (tmp !== undefined) rmSync(tmp, { force: true });
    throw outputError(err, out);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

function refuseOverwritingInput(inputs: string[], out: string): void {
  let o;
  try {
    o = statSync(out);
  } catch {
    return;
  }
  if (o.isDirectory()) throw new UserError(`${out}: is a directory; give the output trace's file name`);
  for (const i of inputs) {
    try {
      const s = statSync(i);
      if (s.ino === o.ino && s.dev === o.dev) throw new UserError(`${out}: is also an input; write the trace to another file`);
    } catch (err) {
      if (err instanceof UserError) throw err;
    }
  }
}

function outputError(err: unknown, out: string): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT' && (err as NodeJS.ErrnoException).syscall === 'open') return new UserError(`${out}: cannot create (no such directory)`);
  if (code === 'EACCES') return new UserError(`${out}: permission denied`);
  if (code === 'ENOSPC') return new UserError(`${out}: no space left on device`);
  if (code === 'EPIPE') return new UserError('output closed early (broken pipe)');
  // Any other failure to write (EFBIG, EDQUOT, EROFS, ...): one line naming the file.
  if (out !== '-' && (err as NodeJS.ErrnoException)?.syscall === 'write') return writeError(out, err);
  return err;
}

export interface ImportOpts {
  output: string;
  from?: string;
}

export async function importCommand(files: string[], o: ImportOpts): Promise<void> {
  const r = await importFiles(files, o.output, { from: o.from, progress: true });
  const shown = r.warnings.slice(0, 10);
  for (const w of shown) process.stderr.write(`leakscope: warning: ${w}\n`);
  if (r.warnings.length > shown.length) process.stderr.write(`leakscope: … ${r.warnings.length - shown.length} more warnings\n`);
  const dest = o.output === '-' ? 'stdout' : o.output;
  process.stderr.write(
    `leakscope: imported ${r.events.toLocaleString('en')} events from ${files.length} file${files.length === 1 ? '' : 's'} into ${dest} ` +
      `(${r.bytes.toLocaleString('en')} bytes); ${r.badRecords.toLocaleString('en')} bad records, ${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}\n`,
  );
  // The trace holds the readable part; a damaged input still fails the command for scripts.
  if (r.damaged.length > 0) process.exitCode = 1;
}
