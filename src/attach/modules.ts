// Per-process code mappings: MODULE records for the trace (so pcs can be symbolized after the
// run) and pc → module lookups for frames.

import type { EventSink } from '../model/events.js';
import { readElfInfo } from '../symbols/elf.js';
import { codeMappings, readMaps, type Mapping } from './procfs.js';

export class ModuleTable {
  private maps: Mapping[] = [];
  private readonly emitted = new Set<string>();

  constructor(readonly pid: number, private readonly buildIds: Map<string, string>) {}

  /** Re-reads /proc/PID/maps and emits MODULE records for mappings not emitted yet. */
  refresh(sink: EventSink, t: number): void {
    const maps = codeMappings(readMaps(this.pid));
    if (maps.length === 0) return;
    this.maps = maps.sort((a, b) => a.start - b.start);
    for (const m of this.maps) {
      const key = `${m.start}:${m.end}:${m.offset}:${m.path}`;
      if (this.emitted.has(key)) continue;
      this.emitted.add(key);
      let id = this.buildIds.get(m.path);
      if (id === undefined) {
        id = readElfInfo(m.path.replace(/ \(deleted\)$/, ''))?.buildId ?? '';
        this.buildIds.set(m.path, id);
      }
      sink.event({ kind: 'module', pid: this.pid, t, base: m.start, size: m.end - m.start, offset: m.offset, path: m.path, buildId: id });
    }
  }

  /** A forked child maps what its parent mapped: it starts from the parent's table. */
  inherit(from: ModuleTable): void {
    this.maps = from.maps.slice();
  }

  /** The module holding pc, or undefined. */
  moduleOf(pc: number): string | undefined {
    return this.mappingOf(pc)?.path;
  }

  /** The module holding pc and pc's offset in that file. */
  locate(pc: number): { path: string; fileOffset: number } | undefined {
    const m = this.mappingOf(pc);
    return m ? { path: m.path, fileOffset: pc - m.start + m.offset } : undefined;
  }

  private mappingOf(pc: number): Mapping | undefined {
    const m = this.maps;
    let lo = 0;
    let hi = m.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const x = m[mid]!;
      if (pc < x.start) hi = mid - 1;
      else if (pc >= x.end) lo = mid + 1;
      else return x;
    }
    return undefined;
  }
}
