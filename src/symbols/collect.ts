// Collects what symbolization needs from an event stream: per-process frame and stack
// definitions (with fork inheritance and exec resets, as SymbolTables scopes them) and the
// MODULE records that place each pc in a file.

import type { Event, EventSink, Frame } from '../model/events.js';

export interface ModuleMap {
  base: number;
  size: number;
  offset: number;
  path: string;
  buildId: string;
}

export class Scope {
  readonly frames = new Map<number, Frame>();
  readonly stacks = new Map<number, [parent: number, frame: number]>();
  readonly modules: ModuleMap[] = [];
  constructor(readonly pid: number, readonly parent?: Scope) {}

  /** The scope (this one or an ancestor) that defines frame `id`. */
  frameOwner(id: number): Scope | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.frames.has(id)) return s;
    return undefined;
  }

  /** The module mapping that holds pc, preferring one with the frame's own module path. */
  moduleFor(pc: number, path: string): ModuleMap | undefined {
    let any: ModuleMap | undefined;
    for (let s: Scope | undefined = this; s; s = s.parent) {
      for (let i = s.modules.length - 1; i >= 0; i--) {
        const m = s.modules[i]!;
        if (pc < m.base || pc >= m.base + m.size) continue;
        if (!path || m.path === path) return m;
        any ??= m;
      }
    }
    return any;
  }
}

export class SymbolCollector implements EventSink {
  /** The current scope of each pid (earlier, exec-replaced scopes cannot be redefined). */
  readonly scopes = new Map<number, Scope>();
  maxFrameId = 0;
  maxStackId = 0;

  private scope(pid: number): Scope {
    let s = this.scopes.get(pid);
    if (!s) {
      s = new Scope(pid);
      this.scopes.set(pid, s);
    }
    return s;
  }

  event(e: Event): void {
    switch (e.kind) {
      case 'frame':
        this.scope(e.pid).frames.set(e.id, e.frame);
        if (e.id > this.maxFrameId) this.maxFrameId = e.id;
        return;
      case 'stack':
        this.scope(e.pid).stacks.set(e.id, [e.parent, e.frame]);
        if (e.id > this.maxStackId) this.maxStackId = e.id;
        return;
      case 'module':
        this.scope(e.pid).modules.push({ base: e.base, size: e.size, offset: e.offset, path: e.path, buildId: e.buildId });
        return;
      case 'fork':
        this.scopes.set(e.pid, new Scope(e.pid, this.scope(e.parentPid)));
        return;
      case 'exec':
        this.scopes.set(e.pid, new Scope(e.pid));
        return;
      default:
        return;
    }
  }
}
