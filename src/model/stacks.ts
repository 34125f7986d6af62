// Interned frames and stacks.
//
// A stack is a node of a call trie: (parent stack, frame). Stack id N stands for the frames
// [frame(N), frame(parent(N)), ...] — leaf first, as pprof wants them. Id 0 is the empty stack.
// Ids are scoped per process; a forked child sees its parent's ids (see SymbolScope).

import type { EventSink, Frame } from './events.js';
import { frame as makeFrame } from './events.js';

/** Forks a definition is looked up through (a fork chain is as long as the input makes it; real
 *  ones are a few processes deep, and each lookup must stay cheap). */
const MAX_ANCESTORS = 256;

/** The frames and stacks one process has defined, falling back to the process it forked from. */
export class SymbolScope {
  private readonly frames = new Map<number, Frame>();
  private readonly stackParent = new Map<number, number>();
  private readonly stackFrame = new Map<number, number>();

  constructor(readonly parent?: SymbolScope) {}

  defineFrame(id: number, f: Frame): void {
    this.frames.set(id, f);
  }

  defineStack(id: number, parent: number, frameId: number): void {
    this.stackParent.set(id, parent);
    this.stackFrame.set(id, frameId);
  }

  frame(id: number): Frame | undefined {
    let s: SymbolScope | undefined = this;
    for (let n = 0; s && n <= MAX_ANCESTORS; s = s.parent, n++) {
      const f = s.frames.get(id);
      if (f) return f;
    }
    return undefined;
  }

  /** Frame ids of a stack, leaf first. Unknown stack ids end the walk (a cut trace). */
  stackFrameIds(id: number): number[] {
    const out: number[] = [];
    let guard = 0;
    while (id !== 0 && guard++ < 4096) {
      const own = this.stackFrame.get(id);
      if (own !== undefined) {
        out.push(own);
        id = this.stackParent.get(id)!;
        continue;
      }
      const inherited = this.parent?.lookupStack(id);
      if (!inherited) break;
      out.push(inherited[1]);
      id = inherited[0];
    }
    return out;
  }

  /** Frames of a stack, leaf first; undefined frames become '??' placeholders. */
  stackFrames(id: number): Frame[] {
    return this.stackFrameIds(id).map((f) => this.frame(f) ?? makeFrame({}));
  }

  private lookupStack(id: number): [number, number] | undefined {
    let s: SymbolScope | undefined = this;
    for (let n = 0; s && n <= MAX_ANCESTORS; s = s.parent, n++) {
      const f = s.stackFrame.get(id);
      if (f !== undefined) return [s.stackParent.get(id)!, f];
    }
    return undefined;
  }
}

/** Per-process symbol scopes as a trace defines them. */
export class SymbolTables {
  private readonly scopes = new Map<number, SymbolScope>();

  scope(pid: number): SymbolScope {
    let s = this.scopes.get(pid);
    if (!s) {
      s = new SymbolScope();
      this.scopes.set(pid, s);
    }
    return s;
  }

  /** A forked child starts with a scope that falls back to its parent's. */
  fork(child: number, parent: number): void {
    this.scopes.set(child, new SymbolScope(this.scope(parent)));
  }

  /** exec replaces the image: definitions start afresh. */
  reset(pid: number): void {
    this.scopes.set(pid, new SymbolScope());
  }
}

/**
 * Assigns ids to frames and stacks for a source and emits their definitions to the sink the
 * first time each is seen, so a stream of events is always self-describing.
 */
export class StackInterner {
  private readonly frameIds = new Map<string, number>();
  private readonly stackIds = new Map<string, number>();
  private nextFrame = 1;
  private nextStack = 1;

  constructor(private readonly sink: EventSink, private readonly pid = 0) {}

  frameId(f: Frame, pid = this.pid): number {
    const key = `${pid}\u0000${f.pc}\u0000${f.module}\u0000${f.fn}\u0000${f.file}\u0000${f.line}\u0000${f.inlined ? 1 : 0}\u0000${f.vaddr ?? ''}`;
    let id = this.frameIds.get(key);
    if (id === undefined) {
      id = this.nextFrame++;
      this.frameIds.set(key, id);
      this.sink.event({ kind: 'frame', pid, t: 0, id, frame: f });
    }
    return id;
  }

  /** Forgets what was interned for `pid` (it exited): a long session does not keep every past
   *  process's ids, and a later process given the same pid gets its definitions afresh. */
  forget(pid: number): void {
    const f = `${pid}\u0000`;
    const s = `${pid}:`;
    for (const k of this.frameIds.keys()) if (k.startsWith(f)) this.frameIds.delete(k);
    for (const k of this.stackIds.keys()) if (k.startsWith(s)) this.stackIds.delete(k);
  }

  /** Interns a stack given leaf-first frames. */
  stackId(framesLeafFirst: readonly Frame[], pid = this.pid): number {
    let parent = 0;
    for (let i = framesLeafFirst.length - 1; i >= 0; i--) {
      const fid = this.frameId(framesLeafFirst[i]!, pid);
      const key = `${pid}:${parent}:${fid}`;
      let id = this.stackIds.get(key);
      if (id === undefined) {
        id = this.nextStack++;
        this.stackIds.set(key, id);
        this.sink.event({ kind: 'stack', pid, t: 0, id, parent, frame: fid });
      }
      parent = id;
    }
    return parent;
  }
}
