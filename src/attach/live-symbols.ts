// Function names for the live tables of `attach --interval` and `--mode aggregate`, resolved
// while the processes still run (the trace itself is symbolized after the run, src/symbols).

import { basename } from 'node:path';
import { readElfInfo, offsetToVaddr, type ElfInfo } from '../symbols/elf.js';
import { detectSymbolizer, resolveAddresses } from '../symbols/resolver.js';

export interface Locator {
  locate(pid: number, pc: number): { path: string; fileOffset: number } | undefined;
}

export class LiveSymbols {
  private readonly elf = new Map<string, ElfInfo | undefined>();
  private readonly names = new Map<string, string>();

  constructor(private readonly loc: Locator) {}

  private static key(path: string, off: number): string {
    return `${path}\u0000${off}`;
  }

  /** Labels for return addresses: `function` when known, else `module+0xvaddr` (the call's). */
  async label(items: { pid: number; pc: number }[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const todo = new Map<string, { off: number; vaddr: number }[]>();
    const located: [string, string, number][] = [];
    for (const { pid, pc } of items) {
      const where = this.loc.locate(pid, pc);
      if (!where) {
        out.set(`${pid}:${pc}`, `0x${pc.toString(16)}`);
        continue;
      }
      located.push([`${pid}:${pc}`, where.path, where.fileOffset]);
      const k = LiveSymbols.key(where.path, where.fileOffset);
      if (this.names.has(k)) continue;
      if (!this.elf.has(where.path)) this.elf.set(where.path, readElfInfo(where.path));
      const info = this.elf.get(where.path);
      // a return address: the call is the instruction before it
      const vaddr = info ? offsetToVaddr(info, where.fileOffset - 1) : undefined;
      // the same address the trace's symbolizer shows for a frame it cannot name (the file's vaddr)
      this.names.set(k, `${basename(where.path)}+0x${(vaddr ?? where.fileOffset).toString(16)}`);
      if (vaddr === undefined) continue;
      let list = todo.get(where.path);
      if (!list) todo.set(where.path, (list = []));
      list.push({ off: where.fileOffset, vaddr });
    }
    const tool = detectSymbolizer();
    if (tool) {
      for (const [path, list] of todo) {
        try {
          const locs = await resolveAddresses(path, list.map((x) => x.vaddr), tool);
          list.forEach((x, i) => {
            // the innermost frame: the function (inlined or not) that makes the call
            const fn = locs[i]?.[0]?.fn;
            if (fn) this.names.set(LiveSymbols.key(path, x.off), fn);
          });
        } catch {
          // names stay module+offset
        }
      }
    }
    for (const [k, path, off] of located) out.set(k, this.names.get(LiveSymbols.key(path, off))!);
    return out;
  }
}
