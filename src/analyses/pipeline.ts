// analyzeFiles(): inputs → events → engine → analysis, for the CLI and reports.

import type { TraceMeta } from '../model/events.js';
import { readInputs, openInput } from '../sources/open.js';
import { sources, sourceByName } from '../sources/registry.js';
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

/** Reads the inputs and folds their events; also returns what the sources reported. */
export async function foldFiles(paths: string[], opts: { from?: string; progress?: boolean } = {}): Promise<{ state: EngineState; warnings: string[]; bad: number; source: string }> {
  const engine = new Engine();
  const meta = await peekMeta(paths[0], opts.from);
  if (meta) engine.begin(meta);
  const { meta: full, stats } = await readInputs(paths, engine, { from: opts.from, progress: opts.progress });
  if (!meta) engine.begin(full);
  const state = engine.finish();
  state.meta = full;
  const warnings: string[] = [];
  let bad = 0;
  for (const s of stats) {
    for (const w of s.warnings) warnings.push(w.startsWith(s.path) ? w : `${s.path}: ${w}`);
    if (s.badRecords > 0) {
      bad += s.badRecords;
      warnings.push(`${s.path}: ${s.badRecords} record(s) not understood${s.badSamples.length ? `, e.g. ${s.badSamples[0]}` : ''}`);
    }
  }
  return { state, warnings, bad, source: [...new Set(stats.map((s) => s.source))].join(',') || full.source };
}

export async function analyzeFiles(paths: string[], opts: AnalyzeFilesOptions = {}): Promise<AnalysisResult> {
  const suppressions = opts.suppress ? Suppressions.load(opts.suppress) : undefined;
  const age = typeof opts.minAge === 'string' ? parseAge(opts.minAge) : opts.minAge;
  const { state, warnings, bad, source } = await foldFiles(paths, opts);
  return analyze(state, {
    top: opts.top,
    pid: opts.pid,
    minAge: age === undefined ? undefined : ageInClock(age, state.clock),
    suppressions,
    inputs: paths,
    warnings,
    source,
    lost: bad,
  });
}

/**
 * The first input's metadata before its events flow: the engine needs the clock kind and the
 * sampling rate from the first event on (readInputs returns the metadata only at the end).
 */
async function peekMeta(path: string | undefined, from?: string): Promise<TraceMeta | undefined> {
  if (!path || path === '-') return undefined;
  let opened;
  try {
    opened = await openInput(path);
  } catch {
    return undefined; // readInputs reports the problem properly
  }
  try {
    const forced = from !== undefined ? sourceByName(from) : undefined;
    let best = forced;
    if (!best) {
      let score = 0;
      for (const s of sources) {
        const v = s.detect(opened.input.head, path);
        if (v > score) {
          score = v;
          best = s;
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
