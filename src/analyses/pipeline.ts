// analyzeFiles(): inputs → events → engine → analysis, for the CLI and reports.

import { readInputs } from '../sources/open.js';
import type { InputStats } from '../sources/open.js';
import { Engine } from '../engine/engine.js';
import type { EngineState } from '../engine/state.js';
import { analyze } from './analyze.js';
import type { AnalysisResult } from './result.js';
import { Suppressions } from './suppressions.js';
import { ageInClock, parseAge } from './duration.js';
import type { Age } from './duration.js';

export interface AnalyzeFilesOptions {
  from?: string;
  pid?: number;
  top?: number;
  /** In trace clock units, or as the user wrote it ('30s', '5000'). */
  minAge?: number | string | Age;
  /** Path of an LSan-style suppression file. */
  suppress?: string;
  progress?: boolean;
}

export interface Folded {
  state: EngineState;
  /** The inputs' warnings, each naming its input, and a line per input with bad records. */
  warnings: string[];
  /** Those of `warnings` that say an input is damaged (commands exit 1), in the same order. */
  damaged: string[];
  bad: number;
  source: string;
}

/** Reads the inputs and folds their events; also returns what the sources reported. */
export async function foldFiles(paths: string[], opts: { from?: string; progress?: boolean } = {}): Promise<Folded> {
  const engine = new Engine();
  // The engine needs the clock kind and the sampling rate from the first event on: readInputs
  // hands over the first input's metadata before its events (no second opening of the file).
  let begun = false;
  const { meta: full, stats } = await readInputs(paths, engine, {
    from: opts.from,
    progress: opts.progress,
    onMeta: (meta) => {
      engine.begin(meta);
      begun = true;
    },
  });
  if (!begun) engine.begin(full);
  const state = engine.finish();
  state.meta = full;
  const warnings: string[] = [];
  const damaged: string[] = [];
  let bad = 0;
  const named = (s: InputStats, w: string) => (w.startsWith(s.path) ? w : `${s.path}: ${w}`);
  for (const s of stats) {
    for (const w of s.warnings) warnings.push(named(s, w));
    for (const w of s.damaged) damaged.push(named(s, w));
    if (s.badRecords > 0) {
      bad += s.badRecords;
      warnings.push(`${s.path}: ${s.badRecords} record(s) not understood${s.badSamples.length ? `, e.g. ${s.badSamples[0]}` : ''}`);
    }
  }
  return { state, warnings, damaged, bad, source: [...new Set(stats.map((s) => s.source))].join(',') || full.source };
}

export async function analyzeFiles(paths: string[], opts: AnalyzeFilesOptions = {}): Promise<AnalysisResult> {
  return (await analyzeInputs(paths, opts)).result;
}

/** analyzeFiles(), and which of the result's warnings say an input is damaged. */
export async function analyzeInputs(paths: string[], opts: AnalyzeFilesOptions = {}): Promise<{ result: AnalysisResult; damaged: string[] }> {
  const suppressions = opts.suppress ? Suppressions.load(opts.suppress) : undefined;
  const age = typeof opts.minAge === 'string' ? parseAge(opts.minAge) : opts.minAge;
  const { state, warnings, damaged, bad, source } = await foldFiles(paths, opts);
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
  return { result, damaged };
}
