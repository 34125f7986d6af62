// Splits a byte stream into lines without decoding it: the callback gets the chunk and the
// line's [start, end) byte range (no '\n', a trailing '\r' kept). Text sources parse fields
// straight from the bytes, so a line costs no string unless a field needs one.

import type { SourceInput, SourceStats } from './source.js';
import type { BinaryLines } from './binary-lines.js';
import { addDamage } from './damage.js';

export type LineHandler = (buf: Buffer, start: number, end: number) => void;

const MAX_LINE = 1 << 20;

/** What a text-log source's decoder offers to `decodeLines`. */
export interface LineDecoder {
  line(buf: Buffer, start: number, end: number): void;
  finish(): SourceStats;
  readonly binary: BinaryLines;
}

/** Reads a text log line by line into its decoder; the stats say what was cut or binary. */
export async function decodeLines(input: SourceInput, dec: LineDecoder): Promise<SourceStats> {
  let long = 0;
  // A line holding a NUL byte is no text a server wrote: it reaches the decoder empty (so line
  // numbers still count it) and is counted as binary damage, whatever the format.
  await forEachLine(input.stream, (b, s, e) => dec.line(b, s, e), {
    onLongLine: () => long++, onBinaryLine: (n) => dec.binary.note(n),
  });
  const stats = dec.finish();
  const binary = dec.binary.warning(input.path);
  if (binary) addDamage(stats, binary, true);
  // A line past 1 MiB is damage too (a runaway or binary line, or not a log of this format).
  if (long) addDamage(stats, `${input.path}: ${long} line(s) longer than ${MAX_LINE >> 20} MiB were cut to their first ${MAX_LINE >> 20} MiB (a runaway log line, or not a log of this format)`, true);
  return stats;
}

export interface LineReaderOptions {
  /** Longer lines are cut to this many bytes (a runaway line must not eat memory). */
  maxLine?: number;
  /** Called once for every line that was cut to maxLine, so the source can say so. */
  onLongLine?: () => void;
  /** When given, a line holding a NUL byte is given to onLine empty, and reported here by its
   *  number (1-based). */
  onBinaryLine?: (lineNo: number) => void;
}

/** Calls `onLine` for every line of `stream`; returns the number of bytes read. */
export async function forEachLine(
  stream: AsyncIterable<Buffer>,
  onLine: LineHandler,
  opts: LineReaderOptions = {},
): Promise<number> {
  const maxLine = opts.maxLine ?? MAX_LINE;
  const onBinary = opts.onBinaryLine;
  let carry: Buffer | null = null;
  let carryCut = false;
  let carryNul = false;
  let bytes = 0;
  let lineNo = 0;
  const line = (b: Buffer, s: number, e: number, nul: boolean) => {
    lineNo++;
    if (nul && onBinary) {
      onBinary(lineNo);
      onLine(b, s, s);
    } else onLine(b, s, e);
  };
  for await (const chunk of stream) {
    bytes += chunk.length;
    let pos = 0;
    // The next NUL byte of the chunk: one scan per chunk finds which lines hold one.
    let nulAt = onBinary ? chunk.indexOf(0) : -1;
    const nulBefore = (end: number): boolean => {
      if (nulAt < 0 || nulAt >= end) return false;
      nulAt = chunk.indexOf(0, end);
      return true;
    };
    if (carry) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        if (nulAt >= 0) carryNul = true;
        if (carry.length + chunk.length > maxLine) carryCut = true;
        if (carry.length < maxLine) carry = Buffer.concat([carry, chunk.subarray(0, maxLine - carry.length)]);
        continue;
      }
      if (nulBefore(nl)) carryNul = true;
      if (carry.length + nl > maxLine) carryCut = true;
      const l: Buffer = carry.length < maxLine ? Buffer.concat([carry, chunk.subarray(0, Math.min(nl, maxLine - carry.length))]) : carry;
      carry = null;
      if (carryCut) opts.onLongLine?.();
      carryCut = false;
      line(l, 0, l.length, carryNul);
      carryNul = false;
      pos = nl + 1;
    }
    for (;;) {
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) break;
      if (nl - pos > maxLine) opts.onLongLine?.();
      line(chunk, pos, nl - pos > maxLine ? pos + maxLine : nl, nulBefore(nl));
      pos = nl + 1;
    }
    if (pos < chunk.length) {
      carry = Buffer.from(chunk.subarray(pos, Math.min(chunk.length, pos + maxLine)));
      carryCut = chunk.length - pos > maxLine;
      carryNul = nulAt >= 0;
    }
  }
  if (carry && carry.length > 0) {
    if (carryCut) opts.onLongLine?.();
    line(carry, 0, carry.length, carryNul);
  }
  return bytes;
}

/** Value of a hex digit byte, or -1. */
export function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Does buf[pos..] start with the bytes of `prefix`? */
export function startsWith(buf: Buffer, pos: number, end: number, prefix: Buffer): boolean {
  const n = prefix.length;
  if (end - pos < n) return false;
  for (let i = 0; i < n; i++) if (buf[pos + i] !== prefix[i]) return false;
  return true;
}

/** A line for a bad-record sample: decoded, cut short. */
export function sampleLine(lineNo: number, buf: Buffer, start: number, end: number, why: string): string {
  const text = buf.toString('utf8', start, Math.min(end, start + 160));
  return `line ${lineNo}: ${why}: ${text}`;
}
