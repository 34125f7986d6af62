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
  /** Keep reading as the file grows (a writer is still appending) until `signal` aborts or `until()` is true. */
  follow?: boolean;
  signal?: AbortSignal;
  until?: () => boolean;
  /** Poll interval in follow mode (ms, default 100). */
  pollMs?: number;
  /** Each warning as it happens; `damaged`: it says the trace is damaged (as all of a trace's do,
   *  but the count of warnings not shown). */
  onWarning?: (msg: string, damaged: boolean) => void;
  /** Called with the bytes read so far. */
  onProgress?: (bytes: number) => void;
  /** The record decoder (codec.ts): every event by default. */
  decode?: ChunkDecoder;
}

const BLOCK = 4 * 1024 * 1024;

/** Streams the events of a trace file to `sink`. Memory is bounded by one chunk. */
export async function readTrace(path: string, sink: EventSink, opts: ReadTraceOptions = {}): Promise<TraceReadResult> {
  const fh = await openTrace(path, opts);
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
        opts.onProgress?.(raw);
      }
      if (raw === 0 && parser.warnings.length) throw new UserError(`${path}: ${compression} data cut short or damaged before any byte could be decompressed`);
      return parser.finish();
    }
    let position = 0;
    for (;;) {
      const { buf, off } = parser.space(BLOCK);
      const { bytesRead } = await fh.read(buf, off, BLOCK, position);
      if (bytesRead > 0) {
        position += bytesRead;
        parser.commit(bytesRead);
        opts.onProgress?.(position);
        continue;
      }
      if (!opts.follow || stopRequested(opts)) break;
      await sleep(opts.pollMs ?? 100, opts.signal);
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
  opts: { onWarning?: (msg: string, damaged: boolean) => void; onProgress?: (bytes: number) => void } = {},
): Promise<TraceReadResult> {
  const parser = new TraceParser(name, sink, opts.onWarning);
  let bytes = 0;
  for await (const piece of stream) {
    parser.push(piece);
    bytes += piece.length;
    opts.onProgress?.(bytes);
  }
  return parser.finish();
}

async function openTrace(path: string, opts: ReadTraceOptions): Promise<FileHandle> {
  for (;;) {
    try {
      const st = await stat(path);
      if (st.isDirectory()) throw new UserError(`${path}: is a directory, expected a trace file`);
      return await open(path, 'r');
    } catch (err) {
      // In follow mode the writer may not have created the file yet.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && opts.follow && !stopRequested(opts)) {
        await sleep(opts.pollMs ?? 100, opts.signal);
        continue;
      }
      throw inputError(path, err);
    }
  }
}

function stopRequested(opts: ReadTraceOptions): boolean {
  return (opts.signal?.aborted ?? false) || (opts.until?.() ?? false);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
