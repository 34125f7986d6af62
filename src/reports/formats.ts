// Every output format, one table per kind of thing shown: its name (what --format and --to
// take), the file extensions that say it, and its renderer, loaded only when used (so a command's
// --help loads none). A new output format is a renderer module in this folder and a row here;
// the commands take their choices, help and extension lookups from these tables.

import type { AnalysisResult } from '../analyses/result.js';
import type { DiffResult } from '../analyses/diff.js';
import type { WindowState } from '../analyses/window.js';
import type { TraceMeta } from '../model/events.js';
import type { CollapsedValue } from './export/collapsed.js';

export interface Format<I> {
  readonly name: string;
  /** Lower-case file extensions (with the dot) that name this format in an output path. */
  readonly extensions: readonly string[];
  readonly description: string;
  render(input: I): Promise<string | Uint8Array>;
}

/** A leak analysis; `window` (the time grid) is there when the format says it needs it. */
export interface AnalysisInput {
  result: AnalysisResult;
  window?: WindowState;
}

export interface AnalysisFormat extends Format<AnalysisInput> {
  /** Draws time ranges and full stacks: the inputs are read with the window grid too. */
  readonly needsWindow?: boolean;
}

/** What `analyze` prints and `report` writes. */
export const ANALYSIS_FORMATS: readonly AnalysisFormat[] = [
  {
    name: 'text',
    extensions: ['.txt'],
    description: 'per process a verdict, top sites, pool classes and live pools, for a terminal',
    render: async ({ result }) => (await import('./text.js')).renderText(result),
  },
  {
    name: 'json',
    extensions: ['.json'],
    description: 'the AnalysisResult (docs/json-output.md)',
    render: async ({ result }) => (await import('./json.js')).renderJson(result),
  },
  {
    name: 'html',
    extensions: ['.html', '.htm'],
    description: 'one self-contained page: memory over time, flame graph, sites, pool tree',
    needsWindow: true,
    render: async ({ result, window }) => (await import('./html/report.js')).htmlReport(result, window),
  },
];

/** A heap profile by full stack for other tools, with what it was made from. */
export interface ProfileInput {
  window: WindowState;
  meta: TraceMeta;
  inputs: string[];
  /** Collapsed stacks: outstanding or allocated bytes. */
  value: CollapsedValue;
}

/** What `export` writes. */
export const PROFILE_FORMATS: readonly Format<ProfileInput>[] = [
  {
    name: 'pprof',
    extensions: ['.pb.gz', '.pprof'],
    description: "gzip'd profile.proto for go tool pprof",
    render: async ({ window, meta, inputs }) => (await import('./export/pprof.js')).pprofBytes(window, { meta, inputs }),
  },
  {
    name: 'speedscope',
    extensions: ['.speedscope.json'],
    description: "speedscope's file format",
    render: async ({ window, inputs }) => JSON.stringify((await import('./export/speedscope.js')).speedscope(window, `leakscope: ${inputs.join(', ')}`)),
  },
  {
    name: 'collapsed',
    extensions: ['.collapsed', '.folded'],
    description: 'collapsed stacks for flamegraph.pl',
    render: async ({ window, value }) => (await import('./export/collapsed.js')).collapsed(window, value),
  },
];

/** What `diff` prints or writes. */
export const DIFF_FORMATS: readonly Format<DiffResult>[] = [
  { name: 'text', extensions: ['.txt'], description: 'a table for a terminal', render: async (d) => (await import('./diff.js')).diffText(d) },
  { name: 'json', extensions: ['.json'], description: 'the DiffResult', render: async (d) => (await import('./diff.js')).diffJson(d) },
  { name: 'html', extensions: ['.html', '.htm'], description: 'a small self-contained table', render: async (d) => (await import('./diff.js')).diffHtml(d) },
];

export function formatNames(table: readonly Format<never>[]): string[] {
  return table.map((f) => f.name);
}

/** The format of `table` called `name` (a name commander's choices() already checked). */
export function formatByName<F extends Format<never>>(table: readonly F[], name: string): F {
  const f = table.find((x) => x.name === name);
  if (!f) throw new Error(`no output format "${name}" (${formatNames(table).join(', ')})`);
  return f;
}

/** The format of `table` an output path names by its extension, if one does. */
export function formatOfPath<F extends Format<never>>(table: readonly F[], path: string): F | undefined {
  const p = path.toLowerCase();
  return table.find((f) => f.extensions.some((e) => p.endsWith(e)));
}
