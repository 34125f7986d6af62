// Reads a `.lstrace` file (or stream) into an EventSink. See parser.ts for damage handling.

import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { EventSink } from '../model/events.js';
import { inputError, UserError } from '../errors.js';
import { TraceParser } from './parser.js';
import { decompress, detectCompression } from '../io/decompress.js';
import type { TraceReadResult } from './parser.js';
import type { ChunkDecoder } from './codec.js';

export type { TraceReadResult } from './parser.js';

export interface ReadTraceOptions {
  /** Each warning as it happens; `damaged`: it says the trace is damaged (as all of a trace's do,
   *  but the count of warnings not shown). */
  onWarning?: (msg: string, damaged: boolean) => void;
  /** The record decoder (codec.ts): every event by default. */
  decode?: ChunkDecoder;
}

const BLOCK = 4 * 1024 * 1024;

/** Streams the events of a trace file to `sink`. Memory is bounded by one chunk. */
export async function readTrace(path: string, sink: EventSink, opts: ReadTraceOptions = {}): Promise<TraceReadResult> {
  const fh = await openTrace(path);
  const parser = new TraceParser(path, sink, opts.onWarning, opts.decode);
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead: got } = await fh.read(magic, 0, 4, 0);
    const compression = detectCompression(magic.subarray(0, got));
    if (compression !== 'none') {
      // A whole compressed trace (.lstrace.gz/.zst): stream it through the decompressor.
      let raw = 0;
      for await (const piece of decompress(path, fh.createReadStream({ start: 0, autoClose: false }), compression, (msg) => parser.addDamage(msg))) {
        parser.push(piece);
        raw += piece.length;
      }
      if (raw === 0 && parser.warnings.length) throw new UserError(`${path}: ${compression} data cut short or damaged before any byte could be decompressed`);
      return parser.finish();
    }
    let position = 0;
    for (;;) {
      const { buf, off } = parser.space(BLOCK);
      const { bytesRead } = await fh.read(buf, off, BLOCK, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      parser.commit(bytesRead);
    }
  } finally {
    await fh.close();
  }
  return parser.finish();
}

/** Streams the events of a trace given as a byte stream (e.g. decompressed) to `sink`. */
export async function readTraceStream(
  name: string,
  stream: AsyncIterable<Uint8Array>,
  sink: EventSink,
  opts: { onWarning?: (msg: string, damaged: boolean) => void } = {},
): Promise<TraceReadResult> {
  const parser = new TraceParser(name, sink, opts.onWarning);
  for await (const piece of stream) parser.push(piece);
  return parser.finish();
}

async function openTrace(path: string): Promise<FileHandle> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new UserError(`${path}: is a directory, expected a trace file`);
    return await open(path, 'r');
  } catch (err) {
    throw inputError(path, err);
  }
}
