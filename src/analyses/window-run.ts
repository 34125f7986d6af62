// One pass over the inputs that feeds both the engine (for the AnalysisResult) and the window
// grid (for time ranges and full-stack exports), so reports read each file once.

import type { Event, EventSink, TraceMeta } from '../model/events.js';
import type { AnalysisResult } from './result.js';
import { readInputs } from '../sources/open.js';
import { WindowSink } from './window.js';
import type { WindowState } from './window.js';

export interface WindowRunOptions {
  from?: string;
  pid?: number;
  top?: number;
  minAge?: number;
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
}

interface EngineLike extends EventSink {
  finish(): unknown;
}

export async function analyzeWithWindow(paths: string[], opts: WindowRunOptions = {}): Promise<WindowRun> {
  const win = new WindowSink({ buckets: opts.buckets, pid: opts.pid });
  let engine: EngineLike | undefined;
  let analyze: ((state: unknown, o: object) => AnalysisResult) | undefined;
  if (!opts.windowOnly) {
    // Bound late so that this module builds while the engine is still being written.
    const engineMod = (await import(specifier('../engine/engine.js'))) as { Engine: new (o?: object) => EngineLike };
    const analyzeMod = (await import(specifier('./analyze.js'))) as { analyze: typeof analyze };
    engine = new engineMod.Engine();
    analyze = analyzeMod.analyze;
  }
  const sink: EventSink = engine
    ? { event: (e: Event) => { engine!.event(e); win.event(e); } }
    : win;
  const { meta } = await readInputs(paths, sink, { from: opts.from, progress: opts.progress });
  const window = win.finish();
  if (!engine || !analyze) return { meta, window };
  const result = analyze(engine.finish(), {
    inputs: paths, meta, pid: opts.pid, top: opts.top, minAge: opts.minAge, suppress: opts.suppress,
  });
  return { meta, window, result };
}

function specifier(s: string): string {
  return s;
}
