// speedscope's file format (sampled profiles, shared frames, weights in bytes): per process one
// profile of outstanding bytes and one of allocated bytes. Stacks go outermost caller first.

import type { WindowState } from '../../analyses/window.js';
import { exportStacks, frameName } from './stacks.js';

export interface SpeedscopeFile {
  $schema: 'https://www.speedscope.app/file-format-schema.json';
  shared: { frames: { name: string; file?: string; line?: number }[] };
  profiles: {
    type: 'sampled';
    name: string;
    unit: 'bytes';
    startValue: number;
    endValue: number;
    samples: number[][];
    weights: number[];
  }[];
  name: string;
  activeProfileIndex: number;
  exporter: string;
}

export function speedscope(w: WindowState, name: string): SpeedscopeFile {
  const frames: SpeedscopeFile['shared']['frames'] = [];
  const ids = new Map<string, number>();
  const frameId = (f: { name: string; file?: string; line?: number }) => {
    const key = `${f.name}\u0000${f.file ?? ''}\u0000${f.line ?? 0}`;
    let i = ids.get(key);
    if (i === undefined) {
      i = frames.length;
      frames.push(f);
      ids.set(key, i);
    }
    return i;
  };
  const profiles: SpeedscopeFile['profiles'] = [];
  const stacks = exportStacks(w);
  for (const p of w.processes) {
    const mine = stacks.filter((x) => x.pid === p.pid);
    for (const [what, pick] of [['outstanding bytes', (x: (typeof mine)[number]) => x.inuseBytes], ['allocated bytes', (x: (typeof mine)[number]) => x.allocBytes]] as const) {
      const samples: number[][] = [];
      const weights: number[] = [];
      for (const x of mine) {
        const v = Math.round(pick(x));
        if (v <= 0) continue;
        const fr = x.frames.length ? x.frames : [{ pc: 0, module: '', fn: '(no stack)', file: '', line: 0, inlined: false }];
        samples.push(fr.map((f) => frameId({ name: frameName(f), ...(f.file ? { file: f.file } : {}), ...(f.line ? { line: f.line } : {}) })).reverse());
        weights.push(v);
      }
      const total = weights.reduce((a, b) => a + b, 0);
      profiles.push({ type: 'sampled', name: `pid ${p.pid}: ${what}`, unit: 'bytes', startValue: 0, endValue: total, samples, weights });
    }
  }
  return {
    $schema: 'https://www.speedscope.app/file-format-schema.json',
    shared: { frames },
    profiles,
    name,
    activeProfileIndex: 0,
    exporter: 'leakscope',
  };
}
