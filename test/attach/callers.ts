// The ground truth for "every pool allocation is attributed to its caller": a traced call's leaf
// frame must be a return address in the executable right after a `call` instruction to the
// probed allocator function, read from the binary itself (not from leakscope's symbolizer).

import type { Event, Frame } from '../../src/model/events.js';
import { ElfFile, offsetToVaddr, readElfInfo } from '../../src/symbols/elf.js';

export interface CallSite {
  /** The function the instruction before the return address calls ('' when it is no direct call). */
  callee: string;
  /** The function holding the return address: the caller. */
  caller: string;
  /** The functions of the executable the stack goes through, leaf first ('' where unnamed). */
  chain: string[];
}

/** Reads a trace's definitions and answers, per pool-alloc (or any stack-carrying) event, where its leaf frame returns. */
export class Callers {
  private readonly modules: Extract<Event, { kind: 'module' }>[] = [];
  private readonly frames = new Map<string, Frame>();
  private readonly stacks = new Map<string, { frame: number; parent: number; pid: number }>();
  private readonly parentOf = new Map<number, number>();
  private readonly elf: ElfFile;
  private readonly fns: { addr: number; size: number; name: string }[];
  private readonly byAddr: Map<number, string>;
  private readonly info;

  constructor(events: Event[], private readonly exe: string) {
    for (const e of events) {
      if (e.kind === 'module') this.modules.push(e);
      else if (e.kind === 'frame') this.frames.set(`${e.pid}:${e.id}`, e.frame);
      else if (e.kind === 'stack') this.stacks.set(`${e.pid}:${e.id}`, { frame: e.frame, parent: e.parent, pid: e.pid });
      else if (e.kind === 'fork') this.parentOf.set(e.pid, e.parentPid);
    }
    this.elf = ElfFile.open(exe);
    this.fns = [...this.elf.functions('.dynsym'), ...this.elf.functions('.symtab')].sort((a, b) => a.addr - b.addr);
    this.byAddr = new Map(this.fns.map((f) => [f.addr, f.name]));
    this.info = readElfInfo(exe)!;
  }

  close(): void {
    this.elf.close();
  }

  /** A definition of this pid, or of an ancestor it inherited it from at fork. */
  private lookup<T>(map: Map<string, T>, pid: number, id: number): { v: T; pid: number } | undefined {
    for (let p: number | undefined = pid, n = 0; p !== undefined && n < 64; p = this.parentOf.get(p), n++) {
      const v = map.get(`${p}:${id}`);
      if (v !== undefined) return { v, pid: p };
    }
    return undefined;
  }

  /** Whether `fn` is one of `targets`, or tail-calls one (a `jmp` to it in its body: the
   *  allocation then returns straight to fn's caller, which is the one that allocated). */
  reaches(fn: string, targets: string[]): boolean {
    if (targets.includes(fn)) return true;
    const f = this.fns.find((x) => x.name === fn);
    if (!f) return false;
    const addrs = new Set(this.fns.filter((x) => targets.includes(x.name)).map((x) => x.addr));
    const body = this.elf.bytesAt(f.addr, Math.min(f.size, 4096));
    for (let o = 0; o + 5 <= body.length; o++) if (body[o] === 0xe9 && addrs.has(f.addr + o + 5 + body.readInt32LE(o + 1))) return true;
    return false;
  }

  /** The executable's virtual address of a frame, if the frame is in it. */
  private vaddr(fr: Frame): number | undefined {
    const m = this.modules.find((x) => x.path === this.exe && fr.pc >= x.base && fr.pc < x.base + x.size);
    return m ? offsetToVaddr(this.info, fr.pc - m.base + m.offset) : undefined;
  }

  private holder(va: number): string {
    return this.fns.find((f) => va > f.addr && va <= f.addr + f.size)?.name ?? '';
  }

  /** Where the event's leaf frame returns, or undefined when it has no stack or is outside the executable. */
  site(pid: number, stack: number): CallSite | undefined {
    if (!stack) return undefined;
    const frames: Frame[] = [];
    for (let id = stack, n = 0; id && n < 128; n++) {
      const st = this.lookup(this.stacks, pid, id);
      if (!st) break;
      const fr = this.lookup(this.frames, st.v.pid, st.v.frame)?.v;
      if (fr) frames.push(fr);
      id = st.v.parent;
    }
    const leaf = frames[0];
    const va = leaf && this.vaddr(leaf);
    if (va === undefined) return undefined;
    const b = this.elf.bytesAt(va - 5, 5);
    const callee = b.length === 5 && b[0] === 0xe8 ? this.byAddr.get(va + b.readInt32LE(1)) ?? '' : '';
    const chain = frames.map((f) => this.vaddr(f)).filter((v): v is number => v !== undefined).map((v) => this.holder(v));
    return { callee, caller: this.holder(va), chain };
  }
}
