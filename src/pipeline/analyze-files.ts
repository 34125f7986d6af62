// The read-fold-analyse pipeline: input files → events (sources) → engine → analysis, for the
// commands and the reports (window-run.ts adds the window grid in the same pass).

import { readInputs } from '../sources/open.js';
import type { InputStats } from '../sources/open.js';
import { teeSink } from '../sources/tee.js';
import type { EventSink, TraceMeta } from '../model/events.js';
import type { StartProgress } from '../progress.js';
import { Engine } from '../engine/engine.js';
import type { EngineState } from '../engine/state.js';
import { analyze } from '../analyses/analyze.js';
import type { AnalysisResult } from '../analyses/result.js';
import { Suppressions } from '../analyses/suppressions.js';
import { ageInClock, parseAge } from '../analyses/duration.js';
import type { Age } from '../analyses/duration.js';

export interface AnalyzeFilesOptions {
  from?: string;
  pid?: number;
  top?: number;
  /** In trace clock units, or as the user wrote it ('30s', '5000'). */
  minAge?: number | string | Age;
  /** Path of an LSan-style suppression file. */
  suppress?: string;
  /** Shows how far the reading got (the CLI's bar). */
  progress?: StartProgress;
  /** Another sink fed the same events in the same pass (the report's window grid). */
  also?: ExtraSink;
}

/** A sink that reads beside the engine; begin() gets the first input's metadata before its events. */
export interface ExtraSink extends EventSink {
  begin(meta: TraceMeta): void;
}

export interface Folded {
  state: EngineState;
  /** The inputs' warnings, each naming its input, and a line per input with bad records. */
  warnings: string[];
  /** Those of `warnings` that say an input is damaged (commands exit 1), in the same order. */
  damaged: string[];
  bad: number;
  source: string;
  /** What readInputs said of each input. */
  stats: InputStats[];
}

/** Reads the inputs and folds their events; also returns what the sources reported. */
export async function foldFiles(paths: string[], opts: { from?: string; progress?: StartProgress; also?: ExtraSink } = {}): Promise<Folded> {
  const engine = new Engine();
  const also = opts.also;
  // The engine needs the clock kind and the sampling rate from the first event on: readInputs
  // hands over the first input's metadata before its events (no second opening of the file).
  let begun = false;
  const { meta: full, stats } = await readInputs(paths, also ? teeSink(engine, also) : engine, {
    from: opts.from,
    progress: opts.progress,
    onMeta: (meta) => {
      engine.begin(meta);
      also?.begin(meta);
      begun = true;
    },
  });
  if (!begun) {
    engine.begin(full);
    also?.begin(full);
  }
  const state = engine.finish();
  state.meta = full;
  const warnings: string[] = [];
  const damaged: string[] = [];
  let bad = 0;
  const named = (s: InputStats, w: string) => (w.startsWith(s.path) ? w : `${s.path}: ${w}`);
  for (const s of stats) {
    for (const w of s.warnings) warnings.push(named(s, w));
    for (const w of s.damaged) damaged.push(named(s, w));
    bad += s.dropped;
    if (s.badRecords > 0) {
      bad += s.badRecords;
      warnings.push(`${s.path}: ${s.badRecords} record(s) not understood${s.badSamples.length ? `, e.g. ${s.badSamples[0]}` : ''}`);
    }
  }
  return { state, warnings, damaged, bad, source: [...new Set(stats.map((s) => s.source))].join(',') || full.source, stats };
}

export async function analyzeFiles(paths: string[], opts: AnalyzeFilesOptions = {}): Promise<AnalysisResult> {
  return (await analyzeInputs(paths, opts)).result;
}

/** analyzeFiles(), which of the result's warnings say an input is damaged, and the inputs' stats. */
export async function analyzeInputs(paths: string[], opts: AnalyzeFilesOptions = {}): Promise<{ result: AnalysisResult; damaged: string[]; stats: InputStats[]; meta: TraceMeta }> {
  const suppressions = opts.suppress ? Suppressions.load(opts.suppress) : undefined;
  const age = typeof opts.minAge === 'string' ? parseAge(opts.minAge) : opts.minAge;
  const { state, warnings, damaged, bad, source, stats } = await foldFiles(paths, opts);
  const result = analyze(state, {
    top: opts.top,
    pid: opts.pid,
    minAge: age === undefined ? undefined : ageInClock(age, state.clock),
    suppressions,
    inputs: paths,
    warnings,
    source,
    lost: bad,
  });
  return { result, damaged, stats, meta: state.meta! };
}
