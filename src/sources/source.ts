// A source turns one kind of input into events of the model. It knows nothing of reports.

import type { EventSink, TraceMeta } from '../model/events.js';

export interface SourceStats {
  /** Events emitted. */
  events: number;
  /** Input lines or records that could not be understood (counted, never fatal). */
  badRecords: number;
  /** The first few bad records, for the user: "line 12: ...". */
  badSamples: string[];
  /** Input lines that are not this source's records and were skipped on purpose (e.g. a
   *  server's own log lines between pool-debug lines); not errors. */
  skipped?: number;
  /** Non-fatal problems worth telling the user (e.g. "truncated final chunk skipped"). */
  warnings: string[];
  /** Those of `warnings` that say the input is damaged (cut short, corrupt chunks, binary junk
   *  in a text log): only its readable part was used, and commands exit 1. In the same order. */
  damaged?: string[];
}

export interface SourceInput {
  /** Path as the user gave it (for messages). */
  path: string;
  /** The decompressed bytes, streamed. */
  stream: AsyncIterable<Buffer>;
  /** Decompressed size when known (for progress), else undefined. */
  size?: number;
  /** The first (up to 64 KiB) decompressed bytes, as `detect` saw them; also at the start of `stream`. */
  head?: Buffer;
}

export interface Source {
  /** Short name used by `--from NAME`. */
  readonly name: string;
  readonly description: string;
  /** How sure (0..1) this source is that it can read an input starting with `head`. */
  detect(head: Buffer, path: string): number;
  /** Metadata for the trace made from this input (clock kind, source name). */
  meta(input: SourceInput): TraceMeta;
  /** Streams the input's events to the sink. Throws a UserError for an unreadable input. */
  read(input: SourceInput, sink: EventSink): Promise<SourceStats>;
}

export function emptyStats(): SourceStats {
  return { events: 0, badRecords: 0, badSamples: [], warnings: [] };
}
