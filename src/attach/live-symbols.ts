// Function names for the live tables of `attach --interval` and `--mode aggregate`, resolved
// while the processes still run (the trace itself is symbolized after the run, src/symbols).

import { basename } from 'node:path';
import { readElfInfo, offsetToVaddr, type ElfInfo } from '../symbols/elf.js';
import { detectSymbolizer, resolveAddresses } from '../symbols/resolver.js';

export interface Locator {
  locate(pid: number, pc: number): { path: string; fileOffset: number } | undefined;
}

export class LiveSymbols {
  private readonly elf = new Map<string, ElfInfo>();
  /** Answers of the symbolizer: a function, or `module+0xvaddr` where it had no name. Only
   * answers are kept: a file that could not be read or a symbolizer that did not run leaves the
   * address unnamed for this call and asked again at the next (a loaded machine must not leave
   * a frame nameless for the rest of an agent's life). */
  private readonly names = new Map<string, string>();

  constructor(private readonly loc: Locator) {}

  private static key(path: string, off: number): string {
    return `${path}\u0000${off}`;
  }

  private elfOf(path: string): ElfInfo | undefined {
    let info = this.elf.get(path);
    if (!info) {
      info = readElfInfo(path);
      if (info) this.elf.set(path, info);
    }
    return info;
  }

  /** Labels for return addresses: `function` when known, else `module+0xvaddr` (the call's). */
  async label(items: { pid: number; pc: number }[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const todo = new Map<string, Map<number, number>>();
    const located: [string, string, number, string][] = [];
    for (const { pid, pc } of items) {
      const where = this.loc.locate(pid, pc);
      if (!where) {
        out.set(`${pid}:${pc}`, `0x${pc.toString(16)}`);
        continue;
      }
      const info = this.elfOf(where.path);
      // a return address: the call is the instruction before it
      const vaddr = info ? offsetToVaddr(info, where.fileOffset - 1) : undefined;
      // the same address the trace's symbolizer shows for a frame it cannot name (the file's vaddr)
      located.push([`${pid}:${pc}`, where.path, where.fileOffset, `${basename(where.path)}+0x${(vaddr ?? where.fileOffset).toString(16)}`]);
      if (vaddr === undefined || this.names.has(LiveSymbols.key(where.path, where.fileOffset))) continue;
      let list = todo.get(where.path);
      if (!list) todo.set(where.path, (list = new Map()));
      list.set(where.fileOffset, vaddr);
    }
    const tool = todo.size > 0 ? detectSymbolizer() : null;
    if (tool) {
      for (const [path, list] of todo) {
        const offs = [...list.keys()];
        try {
          const locs = await resolveAddresses(path, offs.map((o) => list.get(o)!), tool);
          offs.forEach((off, i) => {
            // the innermost frame: the function (inlined or not) that makes the call
            const fn = locs[i]?.[0]?.fn;
            const key = LiveSymbols.key(path, off);
            // a label asked for meanwhile may have named it already
            if (fn) this.names.set(key, fn);
            else if (locs[i] && !this.names.has(key)) this.names.set(key, '');
          });
        } catch {
          // not asked: these stay module+offset for now, and are asked again next time
        }
      }
    }
    for (const [k, path, off, raw] of located) out.set(k, this.names.get(LiveSymbols.key(path, off)) || raw);
    return out;
  }
}
