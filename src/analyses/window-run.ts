// Reports need both the AnalysisResult (what `analyze` prints) and the window grid (time ranges,
// full-stack exports). The result comes from analyzeFiles(), exactly as `analyze` computes it;
// the grid from a second pass of the inputs into a WindowSink.

import type { TraceMeta } from '../model/events.js';
import type { AnalysisResult } from './result.js';
import { openInput, readInputs } from '../sources/open.js';
import { sources, sourceByName } from '../sources/registry.js';
import { WindowSink } from './window.js';
import { analyzeFiles } from './pipeline.js';
import type { WindowState } from './window.js';

export interface WindowRunOptions {
  from?: string;
  pid?: number;
  top?: number;
  minAge?: number | string;
  suppress?: string;
  progress?: boolean;
  /** Window grid buckets (default 64). */
  buckets?: number;
  /** Skip the engine and analyses (exports need only the window grid). */
  windowOnly?: boolean;
}

export interface WindowRun {
  meta: TraceMeta;
  window: WindowState;
  result?: AnalysisResult;
  /** Warnings of the inputs (damage, skipped lines), from the grid's pass over them. */
  warnings: string[];
}

export async function analyzeWithWindow(paths: string[], opts: WindowRunOptions = {}): Promise<WindowRun> {
  let result: AnalysisResult | undefined;
  if (!opts.windowOnly) {
    result = await analyzeFiles(paths, { from: opts.from, pid: opts.pid, top: opts.top, minAge: opts.minAge, suppress: opts.suppress, progress: opts.progress });
  }
  const first = await peekMeta(paths[0], opts.from);
  const win = new WindowSink({ buckets: opts.buckets, pid: opts.pid, clock: result?.clock ?? first?.clock, sampleBytes: first?.sampleBytes });
  const { meta, stats } = await readInputs(paths, win, { from: opts.from, progress: opts.progress });
  return { meta, window: win.finish(), result, warnings: stats.flatMap((s) => s.warnings) };
}

/** The first input's metadata before its events flow (the grid weighs sampled allocations as
 *  the engine does). Problems are left to readInputs to report. */
async function peekMeta(path: string | undefined, from?: string): Promise<TraceMeta | undefined> {
  if (!path || path === '-') return undefined;
  let opened;
  try {
    opened = await openInput(path);
  } catch {
    return undefined;
  }
  try {
    let best = from !== undefined ? sourceByName(from) : undefined;
    let score = 0;
    if (!best) {
      for (const src of sources) {
        const v = src.detect(opened.input.head, path);
        if (v > score) {
          score = v;
          best = src;
        }
      }
    }
    return best ? best.meta(opened.input) : undefined;
  } catch {
    return undefined;
  } finally {
    await opened.close();
  }
}
