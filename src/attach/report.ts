// The report at the end of `attach`: the trace goes through the same analyses as
// `leakscope analyze` (analyzeFiles), symbolized first when the symbolizer is available.

import { UserError } from '../cli/errors.js';

export interface ReportOptions {
  format: 'text' | 'json';
  top: number;
  warnings: string[];
  keep: boolean;
}

type AnyFn = (...args: unknown[]) => unknown;

/** Imports a module of ours that may not be built yet; undefined when it is missing. */
async function optional(rel: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(new URL(rel, import.meta.url).href)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

function pick(mod: Record<string, unknown> | undefined, names: string[]): AnyFn | undefined {
  for (const n of names) if (typeof mod?.[n] === 'function') return mod[n] as AnyFn;
  return undefined;
}

export async function renderReport(tracePath: string, opts: ReportOptions): Promise<void> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const symbolize = pick(await optional(`../symbols/symbolize${ext}`), ['symbolizeTrace', 'symbolizeFile']);
  if (symbolize) await symbolize(tracePath);
  const analyzeFiles = pick(await optional(`../analyses/pipeline${ext}`), ['analyzeFiles']);
  if (!analyzeFiles) {
    throw new UserError(`the analyses are not built in this version; the trace is in ${opts.keep ? tracePath : 'a temporary file'} — use -o FILE and 'leakscope analyze FILE'`);
  }
  const result = (await analyzeFiles([tracePath], { top: opts.top })) as { warnings: string[] };
  result.warnings = [...opts.warnings, ...result.warnings];
  if (opts.format === 'json') {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const render = pick(await optional(`../reports/text${ext}`), ['renderText', 'formatText', 'textReport']);
  if (!render) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const text = await render(result, { top: opts.top });
  process.stdout.write(String(text));
}
