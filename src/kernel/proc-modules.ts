// Turns absolute pcs of a process into frames (pc + module) and describes the modules once per
// process (module events: base, size, file offset, build id) so traces can be symbolized later.
import { readFileSync } from 'node:fs';
import type { EventSink, Frame } from '../model/events.js';
import { frame } from '../model/events.js';
import { ElfFile } from '../symbols/elf.js';

interface Mapping { start: number; end: number; offset: number; path: string }

function readMaps(pid: number): Mapping[] | undefined {
  try {
    const out: Mapping[] = [];
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
      if (!m || m[3]![2] !== 'x') continue;
      out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), offset: parseInt(m[4]!, 16), path: m[5]!.replace(/ \(deleted\)$/, '') });
    }
    return out.length ? out : undefined; // a zombie's maps are empty
  } catch {
    return undefined;
  }
}

export class ProcModules {
  private readonly maps = new Map<number, Mapping[]>();
  private readonly described = new Set<string>();
  private readonly buildIds = new Map<string, string>();

  constructor(private readonly sink: EventSink) {}

  /** A forked child has its parent's mappings until it execs or maps more. */
  inherit(child: number, parent: number): void {
    const m = this.maps.get(parent) ?? readMaps(parent);
    if (m && !this.maps.has(child)) this.maps.set(child, m);
  }

  forget(pid: number): void {
    this.maps.delete(pid);
  }

  private lookup(pid: number, pc: number, t: number, modPid: number): Mapping | undefined {
    let maps = this.maps.get(pid);
    let hit = maps?.find((m) => pc >= m.start && pc < m.end);
    if (!hit) {
      const fresh = readMaps(pid) ?? (modPid !== pid ? readMaps(modPid) : undefined); // new library since (or first time)
      if (fresh) {
        this.maps.set(pid, fresh);
        maps = fresh;
        hit = maps.find((m) => pc >= m.start && pc < m.end);
      }
    }
    if (hit && hit.path.startsWith('/')) this.describe(pid, hit, t);
    return hit;
  }

  private describe(pid: number, m: Mapping, t: number): void {
    const key = `${pid}:${m.start}:${m.path}`;
    if (this.described.has(key)) return;
    this.described.add(key);
    let buildId = this.buildIds.get(m.path);
    if (buildId === undefined) {
      try {
        const elf = ElfFile.open(m.path);
        buildId = elf.buildId();
        elf.close();
      } catch {
        buildId = '';
      }
      this.buildIds.set(m.path, buildId);
    }
    this.sink.event({ kind: 'module', pid, t, base: m.start, size: m.end - m.start, offset: m.offset, path: m.path, buildId });
  }

  /** Frames of `pid` whose pcs lie in the modules of `modPid` (the same pid, or the parent
   *  of a forked child that is gone: it had the parent's modules). */
  frames(pid: number, pcs: number[], t: number, modPid = pid): Frame[] {
    if (modPid !== pid) this.inherit(pid, modPid);
    return pcs.map((pc) => frame({ pc, module: this.lookup(pid, pc, t, modPid)?.path ?? '' }));
  }
}
