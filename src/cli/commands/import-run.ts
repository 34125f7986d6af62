// `leakscope import FILE... -o OUT.lstrace [--from NAME]` — any input leakscope reads
// (traces, APR/nginx logs, ...; plain, .gz or .zst) → one leakscope trace. The output is
// written beside its final name and renamed into place only when complete.
// Registered by commands/import.ts, which loads this module only when the command runs.

import type { StartProgress } from '../../progress.js';
import { startProgress } from '../progress.js';
import { OutputFile, outputError } from '../../io/output-file.js';
import { terminalSafe } from '../../reports/terminal.js';
import { warnIfDamaged } from '../damage.js';
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
export async function importFiles(inputs: string[], out: string, opts: { from?: string; progress?: StartProgress } = {}): Promise<ImportResult> {
  let file: OutputFile | undefined;
  let writer: TraceWriter | undefined;
  // The header needs the metadata, known once the first input has been opened; the output is
  // opened then too, so an unreadable input leaves no file behind.
  // A value the format cannot carry (an integer beyond 2^52: a time step, an exit code) drops that record, counted.
  let refused = 0;
  const sink: EventSink = {
    event(e: Event) {
      try {
        writer!.event(e);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
        refused++;
      }
    },
  };
  try {
    const { stats } = await readInputs(inputs, sink, {
      from: opts.from,
      progress: opts.progress,
      onMeta: (meta) => {
        file = OutputFile.open(out, { inputs });
        writer = TraceWriter.toFd(file.fd, meta);
      },
    });
    await writer!.close();
    file!.commit();
    const why = refused ? [`${refused} record(s) the trace format cannot carry (an integer beyond 2^52) dropped`] : [];
    return {
      events: writer!.events,
      badRecords: stats.reduce((a, s) => a + s.badRecords + s.dropped, 0) + refused,
      warnings: [...stats.flatMap((s) => s.warnings), ...why],
      damaged: [...stats.flatMap((s) => s.damaged), ...why],
      bytes: writer!.bytes,
    };
  } catch (err) {
    if (writer) await writer.close().catch(() => {});
    file?.discard();
    // A write error of the trace writer is the output's (a read error was named by readInputs).
    throw (err as NodeJS.ErrnoException)?.syscall === 'write' ? outputError(out, err) : err;
  }
}

export interface ImportOpts {
  output: string;
  from?: string;
}

export async function importCommand(files: string[], o: ImportOpts): Promise<void> {
  const r = await importFiles(files, o.output, { from: o.from, progress: startProgress });
  // One warning line at most, as every command: the damage (exit 1), else the first note;
  // `leakscope info` on the inputs lists them all.
  const notes = r.warnings.filter((w) => !r.damaged.includes(w));
  if (r.damaged.length === 0 && notes.length > 0) {
    process.stderr.write(`leakscope: warning: ${terminalSafe(notes[0]!.replace(/\s+/g, ' '))}${notes.length > 1 ? ` (and ${notes.length - 1} more: leakscope info lists them)` : ''}\n`);
  }
  const dest = o.output === '-' ? 'stdout' : o.output;
  process.stderr.write(
    `leakscope: imported ${r.events.toLocaleString('en')} events from ${files.length} file${files.length === 1 ? '' : 's'} into ${dest} ` +
      `(${r.bytes.toLocaleString('en')} bytes); ${r.badRecords.toLocaleString('en')} bad records, ${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}\n`,
  );
  // The trace holds the readable part; a damaged input still fails the command for scripts.
  warnIfDamaged(r.damaged, 'the trace holds the readable part');
}
