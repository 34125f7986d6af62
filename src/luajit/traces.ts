// Compiled code: which bytecode (hence Lua line) a JIT trace was running when it allocated.
// The tracer reports the running GCtrace and the return address into its machine code; the
// snapshot covering that address holds the bytecode PC, as lj_trace_unwind() finds it for
// errors raised inside C helpers called from traces. Layouts (LuaJIT 2.1 GC64): docs/luajit.md.

import type { ProtoCache } from './protos.js';

const GCT_TRACE = 9; // ~LJ_TTRACE
const GCT_PROTO = 7;
const T_HDR = 120;
const SNAP_SIZE = 12;
const MAX_SNAPS = 65536;
const PROTO_SCAN_BYTES = 64 * 1024;

export interface TracePc {
  proto: number;
  /** Bytecode index of the instruction. */
  pos: number;
}

function u64(b: Buffer, o: number): number {
  return b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x100000000;
}

export class TraceResolver {
  private readonly cache = new Map<string, TracePc | null>();
  private readonly protoAt = new Map<string, number | undefined>();

  constructor(private readonly protos: ProtoCache) {}

  /** The bytecode a trace was at when its machine code called out at `mcofs`. */
  resolve(pid: number, T: number, mcofs: number): TracePc | null {
    const key = `${pid}:${T}:${mcofs}`;
    let r = this.cache.get(key);
    if (r === undefined) {
      r = this.load(pid, T, mcofs);
      this.cache.set(key, r);
    }
    return r;
  }

  /** Forget what is known of a process; its memory reader belongs to (and is closed by) ProtoCache. */
  drop(pid: number): void {
    for (const k of this.cache.keys()) if (k.startsWith(`${pid}:`)) this.cache.delete(k);
    for (const k of this.protoAt.keys()) if (k.startsWith(`${pid}:`)) this.protoAt.delete(k);
  }

  private load(pid: number, T: number, mcofs: number): TracePc | null {
    const m = this.protos.mem(pid);
    const th = m.read(T, T_HDR);
    if (!th || th[9] !== GCT_TRACE) return null;
    const nsnap = th.readUInt16LE(10);
    const nsnapmap = th.readUInt32LE(44);
    const snapAddr = u64(th, 48);
    const mapAddr = u64(th, 56);
    if (!nsnap || nsnap > MAX_SNAPS) return null;
    const snaps = m.read(snapAddr, nsnap * SNAP_SIZE);
    if (!snaps) return null;
    // Rightmost snapshot whose mcofs <= offset (lj_trace_unwind).
    let lo = 0;
    let hi = nsnap;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (mcofs < snaps.readUInt16LE(mid * SNAP_SIZE + 6)) hi = mid;
      else lo = mid + 1;
    }
    const exitno = Math.max(0, lo - 1);
    const nextofs = exitno + 1 < nsnap ? snaps.readUInt32LE((exitno + 1) * SNAP_SIZE) : nsnapmap;
    if (nextofs < 2) return null;
    const pcb = m.read(mapAddr + 4 * (nextofs - 2), 8);
    if (!pcb) return null;
    // FR2: pcbase = (pc << 8) | (baseslot - 2)
    const pc = Math.floor(u64(pcb, 0) / 256);
    const proto = this.protoOf(pid, pc);
    if (!proto) return null;
    return { proto, pos: (pc - proto - 104) / 4 };
  }

  /** The prototype whose bytecode holds `pc`: bytecode follows the 104-byte GCproto header. */
  private protoOf(pid: number, pc: number): number | undefined {
    const key = `${pid}:${pc}`;
    if (this.protoAt.has(key)) return this.protoAt.get(key);
    let found: number | undefined;
    const m = this.protos.mem(pid);
    for (const span of [4096, PROTO_SCAN_BYTES]) {
      const base = Math.max(0, pc - span) - (Math.max(0, pc - span) % 8);
      const buf = m.read(base, pc - base);
      if (!buf) continue;
      for (let a = pc - 104 - ((pc - 104) % 8); a >= base; a -= 8) {
        const o = a - base;
        if (buf[o + 9] !== GCT_PROTO) continue;
        const sizebc = buf.readUInt32LE(o + 12);
        const rel = pc - a - 104;
        if (rel < 0 || rel % 4 !== 0 || rel / 4 >= sizebc) continue;
        if (this.protos.get(pid, a)) {
          found = a;
          break;
        }
      }
      if (found !== undefined) break;
    }
    this.protoAt.set(key, found);
    return found;
  }
}
