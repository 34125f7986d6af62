// The file header of a `.lstrace` (docs/trace-format.md): magic, u32 length, metadata JSON, CRC.
// One reader for everyone who needs it: the trace parser, the lstrace source's format detection
// and `leakscope mark` (which appends to a live trace and needs its clock).

import { closeSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { TraceMeta } from '../model/events.js';
import { UserError } from '../errors.js';
import { FILE_MAGIC, FORMAT_VERSION, MAX_META } from './format.js';

export interface Header {
  meta: TraceMeta;
  /** Bytes of the header: the first chunk starts here. */
  bytes: number;
  /** Optional keys holding values no writer makes, dropped from `meta` (one line each). */
  warnings: string[];
}

/** The header at the start of `b`; undefined when `b` holds only a part of it and more may come
 *  (`eof` false). A header that is not one, or cut at the end of input, is a UserError naming
 *  `name`. */
export function parseHeader(name: string, b: Uint8Array, eof: boolean): Header | undefined {
  const avail = b.length;
  const magicLen = FILE_MAGIC.length;
  const seen = Math.min(avail, magicLen);
  if (FILE_MAGIC.compare(b, 0, seen, 0, seen) !== 0) throw new UserError(`${name}: not a leakscope trace (no LSTRACE1 header)`);
  if (avail < magicLen + 4) {
    if (!eof) return undefined;
    throw new UserError(avail === 0 ? `${name}: empty file` : `${name}: trace header truncated (${avail} bytes)`);
  }
  const view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const h = view.readUInt32LE(magicLen);
  if (h > MAX_META) throw new UserError(`${name}: bad trace header (metadata length ${h})`);
  const total = magicLen + 4 + h + 4;
  if (avail < total) {
    if (!eof) return undefined;
    throw new UserError(`${name}: trace header truncated (${avail} of ${total} bytes)`);
  }
  const json = view.subarray(magicLen + 4, magicLen + 4 + h);
  if (crc32(json) !== view.readUInt32LE(magicLen + 4 + h)) throw new UserError(`${name}: bad trace header (metadata CRC mismatch)`);
  const warnings: string[] = [];
  return { meta: parseMeta(name, json.toString('utf8'), warnings), bytes: total, warnings };
}

/** The header of the trace file at `path`, read with as few bytes as it takes. */
export function readHeader(path: string): Header {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path}: no such trace file`);
    throw new UserError(`${path}: cannot open (${code ?? String(err)})`);
  }
  try {
    const head = Buffer.alloc(FILE_MAGIC.length + 4);
    const got = readSync(fd, head, 0, head.length, 0);
    const short = parseHeader(path, head.subarray(0, got), got < head.length);
    if (short) return short;
    const all = Buffer.alloc(head.length + head.readUInt32LE(FILE_MAGIC.length) + 4);
    const n = readSync(fd, all, 0, all.length, 0);
    return parseHeader(path, all.subarray(0, n), true)!;
  } finally {
    closeSync(fd);
  }
}

/** Largest wall-clock time a Date can hold (ms from the epoch). */
const MAX_DATE_MS = 8.64e15;

function parseMeta(name: string, text: string, problems: string[]): TraceMeta {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new UserError(`${name}: bad trace header (metadata is not JSON)`);
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new UserError(`${name}: bad trace header (metadata is not an object)`);
  const meta = m as Record<string, unknown>;
  if (typeof meta.format !== 'number') throw new UserError(`${name}: bad trace header (no format version)`);
  if (meta.format > FORMAT_VERSION) {
    throw new UserError(`${name}: trace format ${meta.format} is newer than this leakscope reads (${FORMAT_VERSION}); upgrade leakscope`);
  }
  if (meta.clock !== 'ns' && meta.clock !== 'seq') throw new UserError(`${name}: bad trace header (clock must be "ns" or "seq")`);
  if (typeof meta.source !== 'string') meta.source = 'unknown';
  // The optional keys are claims like any other: a value no writer makes is dropped, and said.
  const drop = (key: string, why: string) => {
    problems.push(`header key ${key} ${why} (${JSON.stringify(meta[key]).slice(0, 40)}); ignored`);
    delete meta[key];
  };
  const w = meta.startWallMs;
  if (w !== undefined && !(typeof w === 'number' && Math.abs(w) <= MAX_DATE_MS)) drop('startWallMs', 'is not a time');
  const mono = meta.startMonoNs;
  if (mono !== undefined && !(typeof mono === 'string' && /^\d{1,20}$/.test(mono))) drop('startMonoNs', 'is not a clock reading');
  const sb = meta.sampleBytes;
  if (sb !== undefined && !(typeof sb === 'number' && sb > 0 && sb <= 2 ** 50)) drop('sampleBytes', 'is not a sampling rate: counts are of the recorded allocations');
  for (const key of ['command', 'hostname']) if (meta[key] !== undefined && typeof meta[key] !== 'string') drop(key, 'is not text');
  return meta as unknown as TraceMeta;
}
