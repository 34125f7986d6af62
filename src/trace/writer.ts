// Writes events to a `.lstrace` file (docs/trace-format.md).
//
// Records are encoded (codec.ts, from the record table of format.ts) into one reusable buffer (no allocation per event); a chunk is written
// with a single write() once it holds ~1 MiB, or on flush()/close(). Each chunk restarts the
// decoding state (pid, tid, t), so the first event of a chunk carries its absolute time and a
// CTX record.

import { closeSync, openSync, writeSync } from 'node:fs';
import { openLiveOutput } from '../io/output-file.js';
import { crc32 } from 'node:zlib';
import type { Event, EventSink, TraceMeta } from '../model/events.js';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC_U32, CTX, FILE_MAGIC, FORMAT_VERSION, MAX_PAYLOAD } from './format.js';
import { encodeEvent } from './codec.js';
import type { RecordWriter } from './codec.js';

/** Chunk payload size at which the writer emits the chunk. */
const CHUNK_TARGET = 1024 * 1024;
/** Room always kept free for one fixed-size record plus a CTX record. */
const SLACK = 160;
/** Strings longer than this (UTF-16 units) are cut: a record must fit in one chunk. */
const MAX_STRING = 1024 * 1024;

export interface TraceWriterOptions {
  /** Payload bytes per chunk (default 1 MiB). Small values are for tests. */
  chunkBytes?: number;
}

export class TraceWriter implements EventSink, RecordWriter {
  private buf: Buffer;
  private pos = CHUNK_HEADER_BYTES;
  private pid = 0;
  private tid = 0;
  private t = 0;
  private closed = false;
  /** Encoder state before the event being encoded, to undo a record that cannot be written. */
  private markPos = CHUNK_HEADER_BYTES;
  private markPid = 0;
  private markTid = 0;
  private markT = 0;
  private readonly target: number;
  /** Events written so far. */
  events = 0;
  /** Chunks written so far. */
  chunks = 0;
  /** Bytes written so far (header included). */
  bytes = 0;

  private constructor(
    private readonly fd: number,
    private readonly ownsFd: boolean,
    opts: TraceWriterOptions,
  ) {
    this.target = Math.max(64, Math.min(opts.chunkBytes ?? CHUNK_TARGET, MAX_PAYLOAD - 4 * MAX_STRING));
    this.buf = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + this.target + 64 * 1024);
  }

  /** Creates (or truncates) `path` and writes the file header. `path` is opened as every live
   *  output is (io/output-file.ts): never through another user's symlink, a device or FIFO in
   *  place, '-' for stdout; a failure is a UserError naming the file. */
  static create(path: string, meta: TraceMeta, opts: TraceWriterOptions = {}): TraceWriter {
    const fd = openLiveOutput(path);
    if (fd === 1) return TraceWriter.toFd(1, meta, opts);
    const w = new TraceWriter(fd, true, opts);
    try {
      w.writeHeader(meta);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return w;
  }

  /** Writes a trace (header included) to an already open descriptor, e.g. 1 for stdout. The fd is not closed. */
  static toFd(fd: number, meta: TraceMeta, opts: TraceWriterOptions = {}): TraceWriter {
    const w = new TraceWriter(fd, false, opts);
    w.writeHeader(meta);
    return w;
  }

  /** Appends chunks to an existing trace (O_APPEND: safe beside other writers of whole chunks). No header is written. */
  static appendTo(path: string, opts: TraceWriterOptions = {}): TraceWriter {
    return new TraceWriter(openSync(path, 'a'), true, opts);
  }

  private writeHeader(meta: TraceMeta): void {
    const json = Buffer.from(JSON.stringify({ ...meta, format: FORMAT_VERSION }), 'utf8');
    const head = Buffer.allocUnsafe(FILE_MAGIC.length + 8 + json.length);
    FILE_MAGIC.copy(head, 0);
    head.writeUInt32LE(json.length, 8);
    json.copy(head, 12);
    head.writeUInt32LE(crc32(json), 12 + json.length);
    this.writeAll(head, head.length);
  }

  event(e: Event): void {
    if (this.closed) throw new Error('TraceWriter: event after close()');
    if (this.pos > this.buf.length - SLACK) this.flushChunk();
    this.markPos = this.pos;
    this.markPid = this.pid;
    this.markTid = this.tid;
    this.markT = this.t;
    try {
      this.encode(e);
    } catch (err) {
      // A value the format cannot carry: drop the half-written record, keep the chunk valid.
      this.pos = this.markPos;
      this.pid = this.markPid;
      this.tid = this.markTid;
      this.t = this.markT;
      throw err;
    }
    this.events++;
    if (this.pos - CHUNK_HEADER_BYTES >= this.target) this.flushChunk();
  }

  private encode(e: Event): void {
    encodeEvent(this, e);
  }

  /** Writes the pending records as a chunk. */
  flush(): void {
    if (this.closed) return;
    this.flushChunk();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushChunk();
    this.closed = true;
    if (this.ownsFd) closeSync(this.fd);
  }

  // --- encoding: the primitives the record encoder (codec.ts, from the record table) calls -----

  private flushChunk(): void {
    const end = this.pos;
    if (end === CHUNK_HEADER_BYTES) return;
    const b = this.buf;
    b.writeUInt32LE(CHUNK_MAGIC_U32, 0);
    b.writeUInt32LE(end - CHUNK_HEADER_BYTES, 4);
    b.writeUInt32LE(crc32(b.subarray(CHUNK_HEADER_BYTES, end)), 8);
    this.pos = this.markPos = CHUNK_HEADER_BYTES;
    this.pid = this.markPid = 0;
    this.tid = this.markTid = 0;
    this.t = this.markT = 0;
    this.chunks++;
    this.writeAll(b, end);
  }

  private writeAll(b: Buffer, len: number): void {
    let off = 0;
    while (off < len) {
      try {
        off += writeSync(this.fd, b, off, len - off);
      } catch (err) {
        // A non-blocking stdout pipe that is full: wait a little and retry.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      }
    }
    this.bytes += len;
  }

  /** Makes room for a record holding these strings (UTF-8 takes at most 3 bytes per UTF-16 unit). */
  reserve(a: string, b = '', c = ''): void {
    const need = SLACK + 3 * (Math.min(len(a), MAX_STRING) + Math.min(len(b), MAX_STRING) + Math.min(len(c), MAX_STRING));
    if (this.pos + need <= this.buf.length) return;
    this.flushChunk();
    if (CHUNK_HEADER_BYTES + need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + need + 64 * 1024);
      this.buf = bigger;
    }
  }

  ctx(pid: number, tid: number): void {
    if (pid !== this.pid || tid !== this.tid) {
      this.u8(CTX);
      this.uv(pid);
      this.uv(tid);
      this.pid = pid;
      this.tid = tid;
    }
  }

  /** For events without a thread: only a change of process needs a CTX. */
  ctxPid(pid: number): void {
    if (pid !== this.pid) this.ctx(pid, 0);
  }

  rec(type: number, t: number): void {
    this.buf[this.pos++] = type;
    const dt = t - this.t;
    this.t = t;
    this.sv(dt);
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  uv(v: number): void {
    const b = this.buf;
    let p = this.pos;
    if (v >>> 0 === v) {
      while (v > 0x7f) {
        b[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      b[p++] = v;
    } else {
      if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER && Math.floor(v) === v)) {
        throw new TypeError(`TraceWriter: expected a non-negative integer, got ${String(v)}`);
      }
      // Above 2^32 (addresses): the low 28 bits as four full groups, then the rest (< 2^25) in int math.
      let hi = Math.floor(v / 268435456);
      let lo = v - hi * 268435456;
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
      b[p++] = lo | 0x80;
      while (hi > 0x7f) {
        b[p++] = (hi & 0x7f) | 0x80;
        hi >>>= 7;
      }
      b[p++] = hi;
    }
    this.pos = p;
  }

  sv(v: number): void {
    if ((v | 0) !== v && !Number.isSafeInteger(v)) throw new TypeError(`TraceWriter: expected an integer, got ${String(v)}`);
    this.uv(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  str(s: string): void {
    if (typeof s !== 'string') s = s == null ? '' : String(s);
    if (s.length > MAX_STRING) s = s.slice(0, MAX_STRING);
    const n = s.length;
    const b = this.buf;
    if (n < 128) {
      // ASCII fast path: the byte length is the string length.
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.uv(bytes);
    this.pos += b.write(s, this.pos, 'utf8');
  }
}


function len(s: string): number {
  return typeof s === 'string' ? s.length : s == null ? 0 : String(s).length;
}
