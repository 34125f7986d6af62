// The modules (executable and libraries) a process's code runs in: pc → module lookups for
// frames, and MODULE records for the trace (base, size, file offset, build id) so that pcs can
// be symbolized after the run. One table per process (attach); ModuleMaps keeps one per process
// for a tracer of many (kernel), describing each module the first time a pc falls in it.

import type { EventSink, Frame } from '../model/events.js';
import { frame } from '../model/events.js';
import { readElfInfo } from '../symbols/elf.js';
import { codeMappings, readMaps, type Mapping } from './maps.js';

export class ModuleTable {
  private maps: Mapping[] = [];
  private readonly emitted = new Set<string>();

  /** `buildIds`: build ids by path, shared by the tables of a session (a file is read once). */
  constructor(readonly pid: number, private readonly buildIds: Map<string, string> = new Map()) {}

  /** Re-reads /proc/PID/maps (of `from`, by default this process) and emits MODULE records for
   *  every mapping not emitted yet; false when the maps could not be read (the process is gone). */
  refresh(sink: EventSink, t: number, from = this.pid): boolean {
    if (!this.read(from)) return false;
    for (const m of this.maps) this.describe(m, sink, t);
    return true;
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

  /** The module holding pc, re-reading the maps (of `from`) when pc is in none (a library
   *  loaded since); its MODULE record is emitted the first time. */
  lookup(pc: number, sink: EventSink, t: number, from = this.pid): string | undefined {
    let m = this.mappingOf(pc);
    if (!m && (this.read() || (from !== this.pid && this.read(from)))) m = this.mappingOf(pc);
    if (m) this.describe(m, sink, t);
    return m?.path;
  }

  /** Re-reads the maps of `from` (by default this process) without emitting anything; false
   *  when they could not be read. */
  read(from = this.pid): boolean {
    const maps = codeMappings(readMaps(from));
    if (maps.length === 0) return false; // gone (a zombie's maps are empty too)
    this.maps = maps.sort((a, b) => a.start - b.start);
    return true;
  }

  private describe(m: Mapping, sink: EventSink, t: number): void {
    const key = `${m.start}:${m.end}:${m.offset}:${m.path}`;
    if (this.emitted.has(key)) return;
    this.emitted.add(key);
    let id = this.buildIds.get(m.path);
    if (id === undefined) {
      id = readElfInfo(m.path.replace(/ \(deleted\)$/, ''))?.buildId ?? '';
      this.buildIds.set(m.path, id);
    }
    sink.event({ kind: 'module', pid: this.pid, t, base: m.start, size: m.end - m.start, offset: m.offset, path: m.path, buildId: id });
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

/** The module tables of every process a tracer meets, turning their pcs into frames. */
export class ModuleMaps {
  private readonly tables = new Map<number, ModuleTable>();
  private readonly buildIds = new Map<string, string>();

  constructor(private readonly sink: EventSink) {}

  private table(pid: number): ModuleTable {
    let m = this.tables.get(pid);
    if (!m) {
      m = new ModuleTable(pid, this.buildIds);
      this.tables.set(pid, m);
    }
    return m;
  }

  /** A forked child has its parent's mappings until it execs or maps more. */
  inherit(child: number, parent: number): void {
    if (this.tables.has(child)) return;
    let p = this.tables.get(parent);
    if (!p) {
      p = this.table(parent);
      p.read();
    }
    this.table(child).inherit(p);
  }

  forget(pid: number): void {
    this.tables.delete(pid);
  }

  /** Frames of `pid` whose pcs lie in the modules of `modPid` (the same pid, or the parent of a
   *  forked child that is gone: it had the parent's modules). */
  frames(pid: number, pcs: number[], t: number, modPid = pid): Frame[] {
    if (modPid !== pid) this.inherit(pid, modPid);
    const m = this.table(pid);
    return pcs.map((pc) => frame({ pc, module: m.lookup(pc, this.sink, t, modPid) ?? '' }));
  }
}
