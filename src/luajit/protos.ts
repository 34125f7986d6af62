// Lua function prototypes (GCproto) read from a live LuaJIT 2.1 GC64 process: chunk name,
// first line and the compressed line map, to turn (prototype, bytecode position) into
// file:line as lj_debug_line() does. Layouts: docs/luajit.md.

import { ProcMem } from '../proc/memory.js';

const PROTO_SIZE = 104;
const GCT_PROTO = 7; // ~LJ_TPROTO
const GCT_STR = 4; // ~LJ_TSTR
const MAX_BC = 1 << 22;
const MAX_NAME = 4096;

export interface Proto {
  chunk: string;
  firstline: number;
  numline: number;
  sizebc: number;
  lineinfo: Buffer | undefined;
  width: 1 | 2 | 4;
}

/** The chunk name as Lua shows it: `@file` → file, `=name` → name, source text → [string "..."]. */
export function chunkLabel(raw: string): string {
  if (raw.startsWith('@') || raw.startsWith('=')) return raw.slice(1);
  const firstLine = raw.split('\n', 1)[0]!;
  const cut = firstLine.length > 40 || raw.includes('\n');
  return `[string "${cut ? firstLine.slice(0, 40) + '...' : firstLine}"]`;
}

export function protoLine(p: Proto, pos: number): number {
  // lj_debug_line(pt, pos): position 0 is the function header, lineinfo[i] is for bc[i+1].
  if (pos === 0xffffffff || pos > p.sizebc || !p.lineinfo) return 0;
  if (pos === p.sizebc) return p.firstline + p.numline;
  if (pos === 0) return p.firstline;
  const i = pos - 1;
  const li = p.lineinfo;
  if ((i + 1) * p.width > li.length) return 0;
  const d = p.width === 1 ? li[i]! : p.width === 2 ? li.readUInt16LE(i * 2) : li.readUInt32LE(i * 4);
  return p.firstline + d;
}

export class ProtoCache {
  private readonly mems = new Map<number, ProcMem>();
  private readonly protos = new Map<string, Proto | null>();
  reads = 0;

  /** The process's memory reader, shared with the trace resolver (one descriptor per process). */
  mem(pid: number): ProcMem {
    let m = this.mems.get(pid);
    if (!m) {
      m = new ProcMem(pid);
      this.mems.set(pid, m);
    }
    return m;
  }

  /** The prototype at `addr` in `pid`, or null when it cannot be read or is not a prototype. */
  get(pid: number, addr: number): Proto | null {
    const key = `${pid}:${addr}`;
    let p = this.protos.get(key);
    if (p === undefined) {
      p = this.load(pid, addr);
      this.protos.set(key, p);
    }
    return p;
  }

  /** Forget what is known of a process (it exited, or exec'd). */
  drop(pid: number): void {
    this.mems.get(pid)?.close();
    this.mems.delete(pid);
    for (const k of this.protos.keys()) if (k.startsWith(`${pid}:`)) this.protos.delete(k);
  }

  close(): void {
    for (const m of this.mems.values()) m.close();
    this.mems.clear();
  }

  private load(pid: number, addr: number): Proto | null {
    const m = this.mem(pid);
    this.reads++;
    const h = m.read(addr, PROTO_SIZE);
    if (!h || h[9] !== GCT_PROTO) return null;
    const sizebc = h.readUInt32LE(12);
    const chunkAddr = Number(h.readBigUInt64LE(64));
    const firstline = h.readInt32LE(72);
    const numline = h.readInt32LE(76);
    const lineinfoAddr = Number(h.readBigUInt64LE(80));
    // Memory is read while the process runs: a block that no longer holds a prototype (freed,
    // reused) must not produce nonsense lines.
    if (sizebc === 0 || sizebc > MAX_BC || numline < 0 || firstline < 0 || firstline > 1 << 24 || numline > 1 << 24) return null;
    let chunk = '?';
    const sh = m.read(chunkAddr, 24);
    if (sh && sh[9] === GCT_STR) {
      const len = Math.min(sh.readUInt32LE(20), MAX_NAME);
      const s = m.read(chunkAddr + 24, len);
      if (s) chunk = chunkLabel(s.toString('utf8'));
    }
    const width: 1 | 2 | 4 = numline < 256 ? 1 : numline < 65536 ? 2 : 4;
    const lineinfo = lineinfoAddr ? m.read(lineinfoAddr, Math.max(1, (sizebc - 1) * width)) : undefined;
    return { chunk, firstline, numline, sizebc, lineinfo, width };
  }
}
