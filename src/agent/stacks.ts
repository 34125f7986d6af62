// Frames and stacks of one target, independent of process ids: a frame is a place in a file
// (module path and file offset), the same in every worker forked from one master and in a
// restarted server running the same binary. Names come from the live symbolizer
// (attach/live-symbols.ts) in batches, at each sample. Both tables are capped (limits.stacks):
// past the cap every new stack is counted under one "(stack table full)" stack.

import type { Frame } from '../model/events.js';
import { frame as makeFrame } from '../model/events.js';
import { LiveSymbols, type Locator } from '../attach/live-symbols.js';
import { defaultFrameRules, shapeSite, type FrameRules } from '../analyses/suppressions.js';
import { FOUND_SITE } from '../analyses/pools.js';

export interface FrameKey {
  id: number;
  path: string;
  off: number;
  /** The function (or module+0xvaddr) once symbolized; fixed names for synthetic frames. */
  name?: string;
  /** Symbolizer runs that gave no function name. */
  tries?: number;
  /** The sample round at which it is asked again. */
  due?: number;
}

export interface StackRec {
  id: number;
  /** Leaf first. */
  frames: FrameKey[];
  /** The site: the first frame that matters (allocator internals dropped), once named. */
  label?: string;
  via?: string;
}

/** What the live symbolizer answers when it has no name: `module+0xvaddr`. */
const ADDRESS_ONLY = /^[^\s]+\+0x[0-9a-f]+$/;
const NAME_TRIES = 8;

export class StackTable {
  private readonly frames = new Map<string, FrameKey>();
  private readonly byId: FrameKey[] = [];
  private readonly stacks = new Map<string, StackRec>();
  private readonly unnamed = new Set<FrameKey>();
  private readonly unlabelled = new Set<StackRec>();
  private readonly retry = new Set<FrameKey>();
  private readonly symbols: LiveSymbols;
  /** The symbolizer asks "where is pc of pid": our pc is a frame id, the answer its file place. */
  private readonly locator: Locator = { locate: (_pid, id) => { const f = this.byId[id]; return f && f.path ? { path: f.path, fileOffset: f.off } : undefined; } };
  private readonly rules: FrameRules = defaultFrameRules();
  /** Stacks and frames refused at the cap. */
  dropped = 0;
  /** Calls of name(): the clock of the retries. */
  private round = 0;
  readonly full: StackRec;
  readonly none: StackRec;
  /** Pools alive before the trace: their creation was not seen. */
  readonly found: StackRec;

  constructor(private readonly cap: number) {
    this.symbols = new LiveSymbols(this.locator);
    this.full = this.synthetic('(stack table full)');
    this.none = this.synthetic('(no stack)');
    this.found = this.synthetic(FOUND_SITE);
  }

  get size(): number {
    return this.stacks.size;
  }

  frame(path: string, off: number): FrameKey | undefined {
    const k = `${path}\u0000${off}`;
    let f = this.frames.get(k);
    if (!f) {
      if (this.frames.size >= this.cap * 4) {
        this.dropped++;
        return undefined;
      }
      f = { id: this.byId.length, path, off };
      this.byId.push(f);
      this.frames.set(k, f);
      this.unnamed.add(f);
    }
    return f;
  }

  /** A frame with a fixed name (an allocator function the probe sits on, a marker stack). */
  namedFrame(name: string): FrameKey {
    const k = `\u0000${name}`;
    let f = this.frames.get(k);
    if (!f) {
      f = { id: this.byId.length, path: '', off: 0, name };
      this.byId.push(f);
      this.frames.set(k, f);
    }
    return f;
  }

  private synthetic(name: string): StackRec {
    const rec: StackRec = { id: -1, frames: [this.namedFrame(name)], label: name };
    return rec;
  }

  /** The one record of these frames (leaf first). */
  stack(frames: FrameKey[]): StackRec {
    if (frames.length === 0) return this.none;
    let k = '';
    for (const f of frames) k += `${f.id},`;
    let s = this.stacks.get(k);
    if (!s) {
      if (this.stacks.size >= this.cap) {
        this.dropped++;
        return this.full;
      }
      s = { id: this.stacks.size + 1, frames };
      this.stacks.set(k, s);
      this.unlabelled.add(s);
    }
    return s;
  }

  /** Names new frames (one symbolizer run per module) and labels new stacks. */
  async name(): Promise<void> {
    this.round++;
    for (const f of this.retry) {
      if ((f.due ?? 0) > this.round) continue;
      this.retry.delete(f);
      this.unnamed.add(f);
    }
    if (this.unnamed.size > 0) {
      const todo = [...this.unnamed];
      this.unnamed.clear();
      const labels = await this.symbols.label(todo.map((f) => ({ pid: 0, pc: f.id })));
      let renamed = false;
      for (const f of todo) {
        const name = labels.get(`0:${f.id}`) ?? `${basename(f.path)}+0x${f.off.toString(16)}`;
        if (f.name !== undefined && f.name !== name) renamed = true;
        f.name = name;
        // an address where a name was hoped for (the symbolizer could not run, or the file has
        // no symbol there): asked again, less and less often (the symbolizer keeps its answers,
        // so a frame it answered costs nothing; one it could not answer is retried)
        if (ADDRESS_ONLY.test(name) && (f.tries = (f.tries ?? 0) + 1) < NAME_TRIES) {
          f.due = this.round + 2 ** f.tries;
          this.retry.add(f);
        }
      }
      if (renamed) for (const s of this.stacks.values()) this.unlabelled.add(s);
    }
    // A stack made while the symbolizer ran may hold frames not named yet: labelled from their
    // offsets it would never be labelled again (a first name is not a rename). It waits a round.
    for (const s of this.unlabelled) {
      if (s.frames.some((f) => f.name === undefined)) continue;
      const shape = shapeSite(this.modelFrames(s), this.rules);
      s.label = shape.label;
      if (shape.via) s.via = shape.via;
      this.unlabelled.delete(s);
    }
  }

  /** The stack as model frames (leaf first), for the report and the pprof export. */
  modelFrames(s: StackRec): Frame[] {
    return s.frames.map((f) => makeFrame({ pc: f.off, module: f.path, fn: f.name ?? '' }));
  }
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
