// Decodes the records of one chunk payload into events (docs/trace-format.md, "Records").
//
// This is the hot path of every analysis: varints are read inline from the byte array through
// a module-level cursor (no closure, no object per field), and each event kind is built by one
// object literal so V8 sees one shape per kind.

import type { Event, EventSink, FastEventSink, Frame, ShmOp } from '../model/events.js';
import { fastSink } from '../model/events.js';

/** Cursor into the payload being decoded. Module-level so the helpers inline to plain loads. */
let pos = 0;

function uv(u: Uint8Array): number {
  // Kept tiny so that V8 inlines it at every call site; longer varints take uvLong().
  const b = u[pos]!;
  if (b < 0x80) {
    pos++;
    return b;
  }
  return uvLong(u);
}

function uvLong(u: Uint8Array): number {
  let p = pos; // a local cursor: the module-level one is written back once
  let b = u[p++]!;
  let v = b & 0x7f;
  b = u[p++]!;
  v |= (b & 0x7f) << 7;
  if (b < 0x80) {
    pos = p;
    return v;
  }
  b = u[p++]!;
  v |= (b & 0x7f) << 14;
  if (b < 0x80) {
    pos = p;
    return v;
  }
  b = u[p++]!;
  v |= (b & 0x7f) << 21;
  if (b < 0x80) {
    pos = p;
    return v;
  }
  // Bytes 5 to 7 (up to 49 bits: a user-space address): gathered in a second int, one multiply.
  const p4 = p;
  b = u[p++]!;
  let h = b & 0x7f;
  if (b < 0x80) {
    pos = p;
    return v + h * 268435456;
  }
  b = u[p++]!;
  h |= (b & 0x7f) << 7;
  if (b < 0x80) {
    pos = p;
    return v + h * 268435456;
  }
  b = u[p++]!;
  h |= (b & 0x7f) << 14;
  if (b < 0x80) {
    pos = p;
    return v + h * 268435456;
  }
  pos = p4;
  // Longer: continue in floating point (exact to 2^53), as bitwise operators would overflow.
  let mul = 268435456;
  for (let i = 0; i < 6; i++) {
    b = u[pos++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
  pos = Number.MAX_SAFE_INTEGER; // more than 10 bytes: malformed
  return 0;
}

function sv(u: Uint8Array): number {
  const z = uv(u);
  if (z < 0x100000000) return (z >>> 1) ^ -(z & 1);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** A time step beyond 2^52 (over 52 days in ns) is one the writer cannot carry, and no recorder
 *  makes: the record is damage (as a varint running past the chunk is), so that every command,
 *  `import` included, reads the same events from such a file. */
const MAX_STEP = 2 ** 52;
function step(u: Uint8Array): number {
  const d = sv(u);
  if (d > MAX_STEP || d < -MAX_STEP) {
    pos = Number.MAX_SAFE_INTEGER;
    return 0;
  }
  return d;
}

function str(u: Buffer): string {
  const n = uv(u);
  const start = pos;
  pos += n;
  if (pos > u.length) return '';
  return n === 0 ? '' : u.toString('utf8', start, pos);
}

/** Strings that repeat record after record (a pool's kind and tag): the last one of each field
 *  is kept with its bytes, and a repeat is compared, not decoded again. */
const SMALL = 32;
class StrCache {
  bytes = new Uint8Array(SMALL);
  len = -1;
  value = '';
}
const POOL_KIND = new StrCache();
const POOL_TAG = new StrCache();

function strCached(u: Buffer, c: StrCache): string {
  const n = uv(u);
  const start = pos;
  pos += n;
  if (pos > u.length) return '';
  if (n === 0) return '';
  if (n > SMALL) return u.toString('utf8', start, pos);
  const b = c.bytes;
  if (n === c.len) {
    let k = 0;
    while (k < n && b[k] === u[start + k]) k++;
    if (k === n) return c.value;
  }
  for (let k = 0; k < n; k++) b[k] = u[start + k]!;
  c.len = n;
  c.value = u.toString('utf8', start, pos);
  return c.value;
}

const SHM: readonly ShmOp[] = ['get', 'attach', 'detach', 'remove'];

export interface ChunkResult {
  events: number;
  /** Why the rest of the chunk could not be decoded, or undefined when it all was. */
  error?: string;
}

/**
 * Decodes one chunk payload (exactly the P payload bytes) and feeds its events to the sink.
 * Events decoded before a malformed record are kept; the rest of the chunk is not.
 */
export function decodeChunk(u: Buffer, sink: EventSink): ChunkResult {
  const fast = fastSink(sink) ?? new ObjectSink(sink);
  return decodeFast(u, fast, fast);
}

/**
 * Gives a plain sink the fast path's calls as Event objects, so there is one decoder: the
 * commonest records are direct calls for the engine, and objects of one shape per kind for
 * every other sink.
 */
class ObjectSink implements FastEventSink {
  constructor(private readonly sink: EventSink) {}
  event(e: Event): void {
    this.sink.event(e);
  }
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    this.sink.event({ kind: 'alloc', pid, t, tid, addr, size, stack });
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    this.sink.event({ kind: 'free', pid, t, tid, addr });
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.sink.event({ kind: 'realloc', pid, t, tid, oldAddr, addr, size, stack });
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    this.sink.event({ kind: 'pool-alloc', pid, t, tid, pool, size, addr, stack });
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    this.sink.event({ kind: 'pool-create', pid, t, tid, pool, parent, poolKind, tag, stack });
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    this.sink.event({ kind: 'pool-destroy', pid, t, pool, stack });
  }
}

/**
 * The decoder: the commonest records become direct calls with their fields (no Event object,
 * no dispatch on `kind`); the rest are Event objects given to `event()`.
 */
function decodeFast(u: Buffer, sink: EventSink, fast: FastEventSink): ChunkResult {
  const end = u.length;
  let pid = 0;
  let tid = 0;
  let t = 0;
  let events = 0;
  pos = 0;
  while (pos < end) {
    const at = pos;
    const type = u[pos++]!;
    let e: Event;
    switch (type) {
      case 0x01: // CTX
        pid = uv(u);
        tid = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        continue;
      case 0x10: { // ALLOC
        t += step(u);
        const addr = uv(u);
        const size = uv(u);
        const stack = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos; // a sink may itself decode another trace
        fast.alloc(pid, tid, t, addr, size, stack);
        pos = resume;
        events++;
        continue;
      }
      case 0x11: { // FREE
        t += step(u);
        const addr = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos;
        fast.free(pid, tid, t, addr);
        pos = resume;
        events++;
        continue;
      }
      case 0x12: { // REALLOC
        t += step(u);
        const oldAddr = uv(u);
        const addr = uv(u);
        const size = uv(u);
        const stack = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos;
        fast.realloc(pid, tid, t, oldAddr, addr, size, stack);
        pos = resume;
        events++;
        continue;
      }
      case 0x23: { // POOL_ALLOC
        t += step(u);
        const pool = uv(u);
        const size = uv(u);
        const addr = uv(u);
        const stack = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos;
        fast.poolAlloc(pid, tid, t, pool, size, addr, stack);
        pos = resume;
        events++;
        continue;
      }
      case 0x20: { // POOL_CREATE
        t += step(u);
        const pool = uv(u);
        const parent = uv(u);
        const stack = uv(u);
        const poolKind = strCached(u, POOL_KIND);
        const tag = strCached(u, POOL_TAG);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos;
        fast.poolCreate(pid, tid, t, pool, parent, poolKind, tag, stack);
        pos = resume;
        events++;
        continue;
      }
      case 0x21: { // POOL_DESTROY
        t += step(u);
        const pool = uv(u);
        const stack = uv(u);
        if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
        const resume = pos;
        fast.poolDestroy(pid, t, pool, stack);
        pos = resume;
        events++;
        continue;
      }
      case 0x22: { // POOL_CLEAR
        t += step(u);
        const pool = uv(u);
        const stack = uv(u);
        e = { kind: 'pool-clear', pid, t, pool, stack };
        break;
      }
      case 0x24: { // POOL_FREE
        t += step(u);
        const pool = uv(u);
        const addr = uv(u);
        e = { kind: 'pool-free', pid, t, pool, addr };
        break;
      }
      case 0x25: { // POOL_TAG
        t += step(u);
        const pool = uv(u);
        const tag = strCached(u, POOL_TAG);
        e = { kind: 'pool-tag', pid, t, pool, tag };
        break;
      }
      case 0x26: { // POOL_CLEANUP
        t += step(u);
        const pool = uv(u);
        const action = u[pos++]!;
        const handler = uv(u);
        if (action > 1) return { events, error: `bad pool-cleanup action ${action} at payload byte ${at}` };
        e = { kind: 'pool-cleanup', pid, t, pool, action: action === 1 ? 'run' : 'add', handler };
        break;
      }
      case 0x27: { // POOL_SIZE
        t += step(u);
        const pool = uv(u);
        const bytes = uv(u);
        e = { kind: 'pool-size', pid, t, pool, bytes };
        break;
      }
      case 0x28: { // POOL_FOUND
        t += step(u);
        const pool = uv(u);
        const parent = uv(u);
        const poolKind = strCached(u, POOL_KIND);
        const tag = strCached(u, POOL_TAG);
        e = { kind: 'pool-found', pid, t, pool, parent, poolKind, tag };
        break;
      }
      case 0x02: { // PROCESS
        t += step(u);
        const ppid = uv(u);
        const command = str(u);
        const exe = str(u);
        e = { kind: 'process', pid, t, ppid, command, exe };
        break;
      }
      case 0x03: { // FORK
        t += step(u);
        const parentPid = uv(u);
        e = { kind: 'fork', pid, t, parentPid };
        break;
      }
      case 0x04: { // EXEC
        t += step(u);
        const exe = str(u);
        const command = str(u);
        e = { kind: 'exec', pid, t, exe, command };
        break;
      }
      case 0x05: { // EXIT
        t += step(u);
        const code = sv(u);
        e = { kind: 'exit', pid, t, code };
        break;
      }
      case 0x30: { // MMAP
        t += step(u);
        const addr = uv(u);
        const size = uv(u);
        const prot = uv(u);
        const flags = uv(u);
        const stack = uv(u);
        e = { kind: 'mmap', pid, t, tid, addr, size, prot, flags, stack };
        break;
      }
      case 0x31: { // MUNMAP
        t += step(u);
        const addr = uv(u);
        const size = uv(u);
        e = { kind: 'munmap', pid, t, addr, size };
        break;
      }
      case 0x32: { // BRK
        t += step(u);
        const addr = uv(u);
        e = { kind: 'brk', pid, t, addr };
        break;
      }
      case 0x33: { // SHM
        t += step(u);
        const op = SHM[u[pos++]!];
        const id = uv(u);
        const addr = uv(u);
        const size = uv(u);
        if (op === undefined) return { events, error: `bad shm op at payload byte ${at}` };
        e = { kind: 'shm', pid, t, op, id, addr, size };
        break;
      }
      case 0x34: { // RSS
        t += step(u);
        const bytes = uv(u);
        e = { kind: 'rss', pid, t, bytes };
        break;
      }
      case 0x35: { // KERNEL
        t += step(u);
        const what = str(u);
        const value = sv(u);
        e = { kind: 'kernel', pid, t, what, value };
        break;
      }
      case 0x40: { // MARKER
        t += step(u);
        const label = str(u);
        e = { kind: 'marker', pid, t, label };
        break;
      }
      case 0x41: { // LOST
        t += step(u);
        const count = uv(u);
        const reason = str(u);
        e = { kind: 'lost', pid, t, count, reason };
        break;
      }
      case 0x50: { // MODULE
        t += step(u);
        const base = uv(u);
        const size = uv(u);
        const offset = uv(u);
        const path = str(u);
        const buildId = str(u);
        e = { kind: 'module', pid, t, base, size, offset, path, buildId };
        break;
      }
      case 0x60: { // FRAME
        const id = uv(u);
        const pc = uv(u);
        const module = str(u);
        const fn = str(u);
        const file = str(u);
        const line = uv(u);
        const flags = uv(u);
        const frame: Frame = { pc, module, fn, file, line, inlined: (flags & 1) === 1 };
        if (flags & 2) frame.vaddr = uv(u);
        e = { kind: 'frame', pid, t: 0, id, frame };
        break;
      }
      case 0x61: { // STACK
        const id = uv(u);
        const parent = uv(u);
        const frame = uv(u);
        e = { kind: 'stack', pid, t: 0, id, parent, frame };
        break;
      }
      default:
        return { events, error: `unknown record type 0x${type.toString(16).padStart(2, '0')} at payload byte ${at}` };
    }
    if (pos > end) return { events, error: `record at payload byte ${at} runs past the chunk` };
    const resume = pos; // a sink may itself decode another trace
    sink.event(e);
    pos = resume;
    events++;
  }
  return { events };
}
