// Resolves a process's stack ids into site shapes once (frames, allocator internals dropped).

import type { SymbolScope } from '../model/stacks.js';
import type { FrameRules, SiteShape } from './suppressions.js';
import { shapeSite } from './suppressions.js';

export class SiteResolver {
  private readonly cache = new Map<number, SiteShape>();
  constructor(private readonly scope: SymbolScope, private readonly rules: FrameRules) {}

  shape(stack: number): SiteShape {
    let s = this.cache.get(stack);
    if (!s) {
      const frames = stack === 0 ? [] : this.scope.stackFrames(stack);
      // A stack whose definitions are missing (a cut trace) still names a distinct site.
      s = frames.length ? shapeSite(frames, this.rules) : { stack: [], label: stack === 0 ? '(no stack)' : `(stack #${stack}, frames unknown)` };
      this.cache.set(stack, s);
    }
    return s;
  }

  /** All frames of a stack, internals included (for suppression matching). */
  frames(stack: number) {
    return stack === 0 ? [] : this.scope.stackFrames(stack);
  }
}
