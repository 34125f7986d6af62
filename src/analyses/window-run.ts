// Reports need both the AnalysisResult (what `analyze` prints) and the window grid (time ranges,
// full-stack exports). The result comes from analyzeFiles(), exactly as `analyze` computes it;
// the grid from a second pass of the inputs into a WindowSink, which takes the clock and the
// sampling rate from the inputs' metadata as it arrives.

import type { TraceMeta } from '../model/events.js';
import type { AnalysisResult } from './result.js';
import { readInputs } from '../sources/open.js';
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
  /** Those of `warnings` that say an input is damaged, in the same order. */
  damaged: string[];
}

export async function analyzeWithWindow(paths: string[], opts: WindowRunOptions = {}): Promise<WindowRun> {
  let result: AnalysisResult | undefined;
  if (!opts.windowOnly) {
    result = await analyzeFiles(paths, { from: opts.from, pid: opts.pid, top: opts.top, minAge: opts.minAge, suppress: opts.suppress, progress: opts.progress });
  }
  const win = new WindowSink({ buckets: opts.buckets, pid: opts.pid, clock: result?.clock });
  const { meta, stats } = await readInputs(paths, win, { from: opts.from, progress: opts.progress, onMeta: (m) => win.begin(m) });
  return { meta, window: win.finish(), result, warnings: stats.flatMap((s) => s.warnings), damaged: stats.flatMap((s) => s.damaged) };
}
