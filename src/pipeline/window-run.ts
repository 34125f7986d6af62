// Reports need both the AnalysisResult (what `analyze` prints) and the window grid (time ranges,
// full-stack exports). One pass of the inputs feeds both: the engine (through analyzeInputs, so
// the result is exactly what `analyze` computes) and, beside it, a WindowSink, which takes the
// clock and the sampling rate from the inputs' metadata as it arrives. Exports need only the grid.

import type { TraceMeta } from '../model/events.js';
import type { StartProgress } from '../progress.js';
import type { AnalysisResult } from '../analyses/result.js';
import { readInputs } from '../sources/open.js';
import type { InputStats } from '../sources/open.js';
import { WindowSink } from '../analyses/window.js';
import { analyzeInputs } from './analyze-files.js';
import type { WindowState } from '../analyses/window.js';

export interface WindowRunOptions {
  from?: string;
  pid?: number;
  top?: number;
  minAge?: number | string;
  suppress?: string;
  /** Shows how far the reading got (the CLI's bar). */
  progress?: StartProgress;
  /** Window grid buckets (default 64). */
  buckets?: number;
  /** Skip the engine and analyses (exports need only the window grid). */
  windowOnly?: boolean;
}

export interface WindowRun {
  meta: TraceMeta;
  window: WindowState;
  result?: AnalysisResult;
  /** Warnings of the inputs (damage, skipped lines), as the sources gave them. */
  warnings: string[];
  /** Those of `warnings` that say an input is damaged, in the same order. */
  damaged: string[];
}

export async function analyzeWithWindow(paths: string[], opts: WindowRunOptions = {}): Promise<WindowRun> {
  const win = new WindowSink({ buckets: opts.buckets, pid: opts.pid });
  if (opts.windowOnly) {
    const { meta, stats } = await readInputs(paths, win, { from: opts.from, progress: opts.progress, onMeta: (m) => win.begin(m) });
    return { meta, window: win.finish(), ...warningsOf(stats) };
  }
  const { result, stats, meta } = await analyzeInputs(paths, {
    from: opts.from, pid: opts.pid, top: opts.top, minAge: opts.minAge, suppress: opts.suppress, progress: opts.progress, also: win,
  });
  return { meta, window: win.finish(), result, ...warningsOf(stats) };
}

function warningsOf(stats: InputStats[]): Pick<WindowRun, 'warnings' | 'damaged'> {
  return { warnings: stats.flatMap((s) => s.warnings), damaged: stats.flatMap((s) => s.damaged) };
}
