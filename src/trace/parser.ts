// Splits a byte stream into the header (header.ts) and chunks of a `.lstrace` file, checks each
// chunk's CRC and hands the payloads to the record decoder (codec.ts). Memory is bounded by one chunk (plus the
// read block). Damage is never fatal past the header: a chunk with a bad CRC or header is
// skipped up to the next chunk magic that starts a valid chunk; a partial final chunk is a
// writer that was killed mid-write (or one still writing: follow mode just waits).

import { crc32 } from 'node:zlib';
import type { EventSink, TraceMeta } from '../model/events.js';
import { decodeChunk } from './codec.js';
import type { ChunkDecoder } from './codec.js';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC, CHUNK_MAGIC_U32, MAX_PAYLOAD } from './format.js';
import { parseHeader } from './header.js';

/** Warnings kept in the result; past this many, only a count is kept. */
const MAX_WARNINGS = 100;

export interface TraceReadResult {
  meta: TraceMeta;
  events: number;
  warnings: string[];
  /** Those of `warnings` that say the trace is damaged (all but the count of warnings not shown). */
  damaged: string[];
  /** Valid chunks decoded. */
  chunks: number;
  /** Damaged regions skipped (bad CRC, bad chunk header, undecodable records). */
  corruptChunks: number;
  /** Bytes of input consumed. */
  bytes: number;
}

export class TraceParser {
  meta: TraceMeta | undefined;
  events = 0;
  chunks = 0;
  corruptChunks = 0;
  readonly warnings: string[] = [];
  /** The damage warnings among `warnings` (every warning of the parser is one). */
  readonly damaged: string[] = [];
  private extraWarnings = 0;

  private buf = Buffer.allocUnsafe(0);
  private start = 0;
  private end = 0;
  /** Input offset of buf[0]. */
  private base = 0;
  /** Input offset where the damaged region being skipped began, or -1. */
  private corruptFrom = -1;
  private corruptWhy = '';
  /** The damaged region began with a chunk cut by the end of input: a truncation, unless a valid chunk follows. */
  private maybeTruncated = false;

  constructor(
    private readonly name: string,
    private readonly sink: EventSink,
    private readonly onWarning?: (msg: string, damaged: boolean) => void,
    /** The record decoder: every event by default (the symbol scanner passes one that builds
     *  definitions only). */
    private readonly decode: ChunkDecoder = decodeChunk,
  ) {}

  /** Room for at least `n` more bytes at the end of the buffer: read into buf[off..off+n), then commit(). */
  space(n: number): { buf: Buffer; off: number } {
    if (this.end + n > this.buf.length) {
      const live = this.end - this.start;
      if (live + n > this.buf.length || this.start === 0) {
        const bigger = Buffer.allocUnsafe(Math.max(live + n, this.buf.length * 2));
        this.buf.copy(bigger, 0, this.start, this.end);
        this.buf = bigger;
      } else {
        this.buf.copy(this.buf, 0, this.start, this.end);
      }
      this.base += this.start;
      this.start = 0;
      this.end = live;
    }
    return { buf: this.buf, off: this.end };
  }

  /** `n` bytes were written at the offset space() returned: parse what is complete. */
  commit(n: number): void {
    this.end += n;
    this.parse(false);
  }

  push(data: Uint8Array): void {
    const { buf, off } = this.space(data.length);
    buf.set(data, off);
    this.commit(data.length);
  }

  /** End of input: report a partial final chunk or damaged tail, and return the totals. */
  finish(): TraceReadResult {
    this.parse(true);
    if (this.extraWarnings > 0) this.warnings.push(`${this.name}: ${this.extraWarnings} more warnings not shown`);
    return {
      meta: this.meta!,
      events: this.events,
      warnings: this.warnings,
      damaged: this.damaged,
      chunks: this.chunks,
      corruptChunks: this.corruptChunks,
      bytes: this.base + this.end,
    };
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.base + this.start;
  }

  /** A damage warning (past the header, every problem of a trace is damage). */
  private warn(msg: string): void {
    const full = `${this.name}: ${msg}`;
    if (this.warnings.length < MAX_WARNINGS) {
      this.addDamage(full);
    } else {
      this.extraWarnings++;
    }
  }

  /** Records a damage warning found outside the parser (a decompressor's), in order. */
  addDamage(full: string): void {
    this.warnings.push(full);
    this.damaged.push(full);
    this.onWarning?.(full, true);
  }

  private parse(eof: boolean): void {
    if (!this.meta && !this.parseHeader(eof)) return;
    const b = this.buf;
    for (;;) {
      if (this.corruptFrom >= 0) {
        // Skipping damage: look for the next chunk magic.
        const q = b.subarray(0, this.end).indexOf(CHUNK_MAGIC, this.start);
        if (q < 0) {
          if (eof) {
            this.endDamage();
            this.start = this.end;
          } else {
            this.start = Math.max(this.start, this.end - (CHUNK_MAGIC.length - 1));
          }
          return;
        }
        this.start = q;
      }
      const s = this.start;
      const avail = this.end - s;
      if (avail < CHUNK_HEADER_BYTES) {
        if (!eof || avail === 0) return;
        this.incompleteAtEof(s);
        continue;
      }
      if (b.readUInt32LE(s) !== CHUNK_MAGIC_U32) {
        this.damage(s, 'no chunk magic');
        continue;
      }
      const p = b.readUInt32LE(s + 4);
      if (p === 0 || p > MAX_PAYLOAD) {
        this.damage(s, `bad chunk length ${p}`);
        continue;
      }
      if (avail < CHUNK_HEADER_BYTES + p) {
        if (!eof) return;
        this.incompleteAtEof(s);
        continue;
      }
      const payload = b.subarray(s + CHUNK_HEADER_BYTES, s + CHUNK_HEADER_BYTES + p);
      if (crc32(payload) !== b.readUInt32LE(s + 8)) {
        this.damage(s, 'CRC mismatch');
        continue;
      }
      if (this.corruptFrom >= 0) this.endDamage(this.base + s);
      this.start = s + CHUNK_HEADER_BYTES + p;
      const r = this.decode(payload, this.sink);
      this.events += r.events;
      this.chunks++;
      if (r.error) {
        this.corruptChunks++;
        this.warn(`chunk at byte ${this.base + s} is damaged (${r.error}); ${r.events} events of it kept, the rest skipped`);
      }
    }
  }

  /** A damaged chunk starts at buffer index s: skip to the next magic after it. */
  private damage(s: number, why: string): void {
    if (this.corruptFrom < 0) {
      this.corruptFrom = this.base + s;
      this.corruptWhy = why;
      this.maybeTruncated = false;
    }
    this.start = s + 1;
  }

  /** At the end of input, a chunk starting at buffer index s is cut short. */
  private incompleteAtEof(s: number): void {
    if (this.corruptFrom >= 0 && !this.maybeTruncated) this.endDamage(this.base + s);
    if (this.corruptFrom < 0) {
      this.corruptFrom = this.base + s;
      this.maybeTruncated = true;
    }
    this.start = s + 1;
  }

  /** The damaged region ends at input offset `resume` (a valid chunk), or at the end of input. */
  private endDamage(resume?: number): void {
    const from = this.corruptFrom;
    this.corruptFrom = -1;
    if (resume === undefined && this.maybeTruncated) {
      this.warn(`last chunk truncated at byte ${from} (writer killed?); ${this.events} events before it kept`);
    } else {
      this.corruptChunks++;
      const why = this.maybeTruncated ? 'bad chunk length' : this.corruptWhy;
      this.warn(
        resume === undefined
          ? `damaged data from byte ${from} to the end skipped (${why})`
          : `damaged chunk at byte ${from} (${why}); skipped ${resume - from} bytes to the next good chunk`,
      );
    }
    this.maybeTruncated = false;
  }

  private parseHeader(eof: boolean): boolean {
    const h = parseHeader(this.name, this.buf.subarray(this.start, this.end), eof);
    if (!h) return false;
    this.meta = h.meta;
    for (const m of h.warnings) this.warn(m);
    this.start += h.bytes;
    return true;
  }
}
