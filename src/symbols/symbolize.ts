// Symbolization after the run: every frame that has a pc and a module but no function yet is
// resolved (function, file:line, inlined callers, C++ demangled) from the module's file, checked
// against the build id its MODULE record carries. The result is a list of definition events to
// append to the trace: FRAME redefinitions, plus, for pcs inside inlined code, new frames and
// stack nodes for the inlined callers (new ids above every id in the trace) and STACK
// redefinitions that splice them in, so reports show `inner (inlined) <- outer` in order.

import type { Event, Frame } from '../model/events.js';
import { scanDefinitions } from './scan.js';
import { TraceWriter } from '../trace/writer.js';
import { SymbolCollector, type Scope } from './collect.js';
import { offsetToVaddr, readElfInfo, type ElfInfo } from './elf.js';
import { detectSymbolizer, resolveAddresses, type Location, type SymbolizerTool } from './resolver.js';

export { SymbolCollector } from './collect.js';
export type { Location, SymbolizerTool } from './resolver.js';

export interface SymbolizeOptions {
  /** Default: llvm-symbolizer if installed, else addr2line. */
  tool?: SymbolizerTool;
  /** The pcs are return addresses (recorder and uprobe stacks): look up pc - 1 so the call site,
   *  not the next line, is named. Leaf pcs of sampled stacks would set this false. Default true. */
  returnAddresses?: boolean;
  /** Each warning; `damaged` when it says the trace is damaged (the scan's), not a symbol problem. */
  onWarning?: (msg: string, damaged?: boolean) => void;
}

export interface SymbolizeStats {
  /** Frames that needed symbols. */
  frames: number;
  /** Frames given a function or a file. */
  resolved: number;
  /** Module files read. */
  modules: number;
  /** Intact chunks in the trace (0: nothing was recorded). */
  chunks?: number;
  warnings: string[];
}

interface FrameRef {
  scope: Scope;
  id: number;
  frame: Frame;
  vaddr: number;
}

/** Resolves the collected frames; returns the definition events to append, leaf data first. */
export async function symbolizeCollected(c: SymbolCollector, opts: SymbolizeOptions = {}): Promise<{ events: Event[]; stats: SymbolizeStats }> {
  const stats: SymbolizeStats = { frames: 0, resolved: 0, modules: 0, warnings: [] };
  const warn = (msg: string): void => {
    stats.warnings.push(msg);
    opts.onWarning?.(msg, false);
  };
  const tool = opts.tool ?? detectSymbolizer();
  const back = opts.returnAddresses === false ? 0 : 1;

  // Plan: frame → (file, vaddr), grouped per file.
  const perFile = new Map<string, FrameRef[]>();
  const elf = new Map<string, ElfInfo | undefined>();
  const badBuild = new Set<string>();
  for (const scope of c.scopes.values()) {
    for (const [id, f] of scope.frames) {
      if (f.pc === 0 || f.fn) continue;
      stats.frames++;
      const m = scope.moduleFor(f.pc, f.module);
      if (!m) continue;
      const path = m.path.replace(/ \(deleted\)$/, '');
      if (!elf.has(path)) elf.set(path, readElfInfo(path));
      const info = elf.get(path);
      if (!info) continue;
      if (m.buildId && info.buildId && m.buildId !== info.buildId) {
        if (!badBuild.has(path)) warn(`${path} changed since the trace was recorded (build id differs): its frames stay unresolved`);
        badBuild.add(path);
        continue;
      }
      const vaddr = offsetToVaddr(info, Math.max(0, f.pc - back - m.base + m.offset));
      if (vaddr === undefined) continue;
      let list = perFile.get(path);
      if (!list) perFile.set(path, (list = []));
      list.push({ scope, id, frame: { ...f, module: f.module || m.path }, vaddr });
    }
  }
  if (perFile.size > 0 && !tool) {
    warn('no symbolizer found (install llvm or binutils): frames stay as addresses');
    return { events: [], stats };
  }

  // Resolve, one symbolizer process per file, a few at a time.
  const chains = new Map<Scope, Map<number, Frame[]>>();
  const files = [...perFile];
  const resolveFile = async ([path, refs]: [string, FrameRef[]]): Promise<void> => {
    stats.modules++;
    const unique = [...new Set(refs.map((r) => r.vaddr))];
    let locs: Location[][];
    try {
      locs = await resolveAddresses(path, unique, tool!);
    } catch (err) {
      warn(`${path}: symbolizer failed (${(err as Error).message})`);
      return;
    }
    const byVaddr = new Map<number, Location[]>();
    unique.forEach((v, i) => byVaddr.set(v, locs[i]!));
    for (const r of refs) {
      const chain = (byVaddr.get(r.vaddr) ?? []).filter((l) => l.fn || l.file);
      // Nothing named there (a static function of a stripped binary): the frame keeps its
      // address, as the file's own (vaddr), which the run's absolute pc is not.
      const frames = chain.length === 0
        ? [{ ...r.frame, vaddr: r.vaddr }]
        : chain.map((l, i) => ({ ...r.frame, fn: l.fn, file: l.file, line: l.line, inlined: i < chain.length - 1 }));
      if (chain.length > 0) stats.resolved++;
      let m = chains.get(r.scope);
      if (!m) chains.set(r.scope, (m = new Map()));
      m.set(r.id, frames);
    }
  };
  const workers = Array.from({ length: Math.min(4, files.length) }, async () => {
    for (let f = files.shift(); f; f = files.shift()) await resolveFile(f);
  });
  await Promise.all(workers);

  // Emit: redefine each frame as its innermost location; give inlined callers new frames, and
  // splice them into every stack node that uses such a frame.
  const events: Event[] = [];
  let nextFrame = c.maxFrameId + 1;
  let nextStack = c.maxStackId + 1;
  const outerIds = new Map<Scope, Map<number, number[]>>();  // frame → ids of its outer chain (outermost last)
  for (const [scope, m] of chains) {
    const outer = new Map<number, number[]>();
    outerIds.set(scope, outer);
    for (const [id, frames] of m) {
      events.push({ kind: 'frame', pid: scope.pid, t: 0, id, frame: frames[0]! });
      if (frames.length === 1) continue;
      const ids: number[] = [];
      for (const f of frames.slice(1)) {
        const fid = nextFrame++;
        events.push({ kind: 'frame', pid: scope.pid, t: 0, id: fid, frame: f });
        ids.push(fid);
      }
      outer.set(id, ids);
    }
  }
  if (outerIds.size > 0) {
    for (const scope of c.scopes.values()) {
      for (const [sid, [parent, fid]] of scope.stacks) {
        const owner = scope.frameOwner(fid);
        const ids = owner && outerIds.get(owner)?.get(fid);
        if (!ids) continue;
        let p = parent;
        for (let i = ids.length - 1; i >= 0; i--) {
          const nid = nextStack++;
          events.push({ kind: 'stack', pid: scope.pid, t: 0, id: nid, parent: p, frame: ids[i]! });
          p = nid;
        }
        events.push({ kind: 'stack', pid: scope.pid, t: 0, id: sid, parent: p, frame: fid });
      }
    }
  }
  return { events, stats };
}

/** Symbolizes a trace file in place: reads it, resolves its frames and appends the definitions. */
export async function symbolizeTrace(path: string, opts: SymbolizeOptions = {}): Promise<SymbolizeStats> {
  const c = new SymbolCollector();
  const { chunks } = await scanDefinitions(path, c, opts.onWarning);
  const { events, stats } = await symbolizeCollected(c, opts);
  stats.chunks = chunks;
  if (events.length > 0) {
    const w = TraceWriter.appendTo(path);
    for (const e of events) w.event(e);
    await w.close();
  }
  return stats;
}
