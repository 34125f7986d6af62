// Writes `.lstrace` bytes by hand (docs/trace-format.md), with any values at all: varints up to
// 2^64 and beyond what TraceWriter accepts, for tests of what readers do with hostile traces.
import { crc32 } from 'node:zlib';

export type Num = number | bigint;

export function varint(v: Num): number[] {
  let x = BigInt(v);
  if (x < 0n) x = (1n << 64n) + x; // as a u64 would hold it
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return out;
}

export function svarint(v: Num): number[] {
  const x = BigInt(v);
  return varint(x >= 0n ? x * 2n : -x * 2n - 1n);
}

function str(s: string | Buffer): number[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return [...varint(b.length), ...b];
}

/** Record encoders: each returns the record's bytes. */
export const rec = {
  ctx: (pid: Num, tid: Num = 0) => [0x01, ...varint(pid), ...varint(tid)],
  process: (dt: Num, ppid: Num, command: string | Buffer, exe: string | Buffer) => [0x02, ...svarint(dt), ...varint(ppid), ...str(command), ...str(exe)],
  fork: (dt: Num, parent: Num) => [0x03, ...svarint(dt), ...varint(parent)],
  exit: (dt: Num, code: Num) => [0x05, ...svarint(dt), ...svarint(code)],
  alloc: (dt: Num, addr: Num, size: Num, stack: Num = 0) => [0x10, ...svarint(dt), ...varint(addr), ...varint(size), ...varint(stack)],
  free: (dt: Num, addr: Num) => [0x11, ...svarint(dt), ...varint(addr)],
  realloc: (dt: Num, old: Num, addr: Num, size: Num, stack: Num = 0) => [0x12, ...svarint(dt), ...varint(old), ...varint(addr), ...varint(size), ...varint(stack)],
  poolCreate: (dt: Num, pool: Num, parent: Num, stack: Num, kind: string, tag: string | Buffer) => [0x20, ...svarint(dt), ...varint(pool), ...varint(parent), ...varint(stack), ...str(kind), ...str(tag)],
  poolDestroy: (dt: Num, pool: Num, stack: Num = 0) => [0x21, ...svarint(dt), ...varint(pool), ...varint(stack)],
  poolAlloc: (dt: Num, pool: Num, size: Num, addr: Num = 0, stack: Num = 0) => [0x23, ...svarint(dt), ...varint(pool), ...varint(size), ...varint(addr), ...varint(stack)],
  poolSize: (dt: Num, pool: Num, bytes: Num) => [0x27, ...svarint(dt), ...varint(pool), ...varint(bytes)],
  mmap: (dt: Num, addr: Num, size: Num, prot: Num, flags: Num, stack: Num = 0) => [0x30, ...svarint(dt), ...varint(addr), ...varint(size), ...varint(prot), ...varint(flags), ...varint(stack)],
  rss: (dt: Num, bytes: Num) => [0x34, ...svarint(dt), ...varint(bytes)],
  kernel: (dt: Num, what: string, value: Num) => [0x35, ...svarint(dt), ...str(what), ...svarint(value)],
  marker: (dt: Num, label: string | Buffer) => [0x40, ...svarint(dt), ...str(label)],
  lost: (dt: Num, count: Num, reason: string) => [0x41, ...svarint(dt), ...varint(count), ...str(reason)],
  frame: (id: Num, pc: Num, module: string | Buffer, fn: string | Buffer, file: string | Buffer, line: Num, flags: Num = 0) =>
    [0x60, ...varint(id), ...varint(pc), ...str(module), ...str(fn), ...str(file), ...varint(line), ...varint(flags)],
  stack: (id: Num, parent: Num, frame: Num) => [0x61, ...varint(id), ...varint(parent), ...varint(frame)],
};

export function header(meta: Record<string, unknown> | string): Buffer {
  const json = Buffer.from(typeof meta === 'string' ? meta : JSON.stringify(meta), 'utf8');
  const h = Buffer.alloc(12 + json.length + 4);
  h.write('LSTRACE1', 0, 'latin1');
  h.writeUInt32LE(json.length, 8);
  json.copy(h, 12);
  h.writeUInt32LE(crc32(json), 12 + json.length);
  return h;
}

export function chunk(records: number[][]): Buffer {
  const payload = Buffer.from(records.flat());
  const c = Buffer.alloc(12);
  c.write('LSCK', 0, 'latin1');
  c.writeUInt32LE(payload.length, 4);
  c.writeUInt32LE(crc32(payload), 8);
  return Buffer.concat([c, payload]);
}

/** A whole trace: header and one chunk per record list. */
export function rawTrace(meta: Record<string, unknown> | string, ...chunks: number[][][]): Buffer {
  return Buffer.concat([header(meta), ...chunks.map(chunk)]);
}

export const NS_META = { format: 1, clock: 'ns', source: 'test', startWallMs: 1_700_000_000_000 };
