// Decodes the record stream of native/luajit/build/lstrace-luajit (stdout), see
// native/luajit/src/lj_event.h: per record a u32 length, then either a stack definition
// (u8 kind 1, u32 id, `struct lj_event`: an 80-byte header and `nframes` 16-byte frames), sent
// the first time a stack is seen, or an event (u8 kind 2, `struct lj_rec_event`, 48 bytes).

export const enum LjOp { Alloc = 1, Realloc = 2, Free = 3 }
export const enum LjKind { Lua = 0, C = 1, Builtin = 2 }

export const LJ_F_TRACE = 1;
export const LJ_F_NOLUA = 2;
export const LJ_F_VM = 4;
export const LJ_F_NOSTATE = 8;
export const LJ_F_TRUNC = 16;
export const LJ_F_BADREAD = 32;

const HDR = 80;
const FRAME = 16;
/** Largest record the loader writes (LJ_MAX_FRAMES = 24). */
const MAX_RECORD = HDR + 64 * FRAME;

export interface LjFrame { kind: number; ptr: number; pos: number; ffid: number }

export interface LjRecord {
  /** CLOCK_MONOTONIC, ns (as a double: exact for ~104 days of uptime). */
  ts: number;
  pid: number;
  tid: number;
  op: number;
  ptr: number;
  ret: number;
  osize: number;
  nsize: number;
  g: number;
  vmstate: number;
  flags: number;
  /** GCtrace running (compiled code), 0 when unknown. */
  trace: number;
  /** Return address into the trace's machine code minus its start, -1 when unknown. */
  mcofs: number;
  frames: LjFrame[];
}

function u64(b: Buffer, o: number): number {
  return b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x100000000;
}

export const REC_STACK = 1;
export const REC_EVENT = 2;
const EVENT_LEN = 48;

/** One allocator event; `stack` names an earlier stack definition (0: none). */
export interface LjEvent {
  op: number;
  pid: number;
  tid: number;
  stack: number;
  ts: number;
  ptr: number;
  ret: number;
  nsize: number;
}

export interface RecordHandlers {
  stack(id: number, r: LjRecord): void;
  event(e: LjEvent): void;
}

/** Incremental parser: feed it stdout chunks, it calls the handlers per complete record. */
export class RecordParser {
  private pending: Buffer = Buffer.alloc(0);
  /** Records that did not make sense (corrupt stream): counted, never thrown. */
  bad = 0;

  constructor(private readonly h: RecordHandlers) {}

  push(chunk: Buffer): void {
    const b = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let o = 0;
    while (b.length - o >= 5) {
      const len = b.readUInt32LE(o);
      const kind = b[o + 4];
      const ok =
        (kind === REC_EVENT && len === EVENT_LEN) ||
        (kind === REC_STACK && len >= 5 + HDR && len <= 5 + MAX_RECORD && (len - 5 - HDR) % FRAME === 0);
      if (!ok) {
        // Corrupt stream: nothing after this can be trusted.
        this.bad++;
        o = b.length;
        break;
      }
      if (b.length - o - 4 < len) break;
      const p = o + 4;
      if (kind === REC_EVENT) {
        this.h.event({
          op: b[p + 1]!,
          pid: b.readUInt32LE(p + 4),
          tid: b.readUInt32LE(p + 8),
          stack: b.readUInt32LE(p + 12),
          ts: u64(b, p + 16),
          ptr: u64(b, p + 24),
          ret: u64(b, p + 32),
          nsize: u64(b, p + 40),
        });
      } else {
        this.h.stack(b.readUInt32LE(p + 1), decodeRecord(b, p + 5, len - 5));
      }
      o += 4 + len;
    }
    this.pending = o < b.length ? Buffer.from(b.subarray(o)) : Buffer.alloc(0);
  }

  /** Bytes of an incomplete record left at the end. */
  get leftover(): number {
    return this.pending.length;
  }
}

export function decodeRecord(b: Buffer, o: number, len: number): LjRecord {
  const nframes = Math.min(b[o + 61]!, (len - HDR) / FRAME);
  const frames: LjFrame[] = [];
  for (let i = 0; i < nframes; i++) {
    const f = o + HDR + i * FRAME;
    frames.push({ ptr: u64(b, f), pos: b.readUInt32LE(f + 8), kind: b[f + 12]!, ffid: b[f + 13]! });
  }
  return {
    ts: u64(b, o),
    pid: b.readUInt32LE(o + 8),
    tid: b.readUInt32LE(o + 12),
    ptr: u64(b, o + 16),
    ret: u64(b, o + 24),
    osize: u64(b, o + 32),
    nsize: u64(b, o + 40),
    g: u64(b, o + 48),
    vmstate: b.readInt32LE(o + 56),
    op: b[o + 60]!,
    flags: b[o + 62]!,
    trace: u64(b, o + 64),
    mcofs: b.readUInt32LE(o + 72) === 0xffffffff ? -1 : b.readUInt32LE(o + 72),
    frames,
  };
}
