// `leakscope diff A B` (what grew between two traces) or `leakscope diff A --from T1 --to T2`
// (between two points of one trace: times such as 30s, or marker names).
// Registered by commands/diff.ts, which loads this module only when the command runs.

import { UserError } from '../../errors.js';
import { startProgress } from '../progress.js';
import { analyzeWithWindow } from '../../pipeline/window-run.js';
import { analyzeInputs } from '../../pipeline/analyze-files.js';
import { diffPoints, diffTraces, resolvePoint } from '../../analyses/diff.js';
import { DIFF_FORMATS, formatByName } from '../../reports/formats.js';
import { OutputFile, writeOutputFile } from '../../io/output-file.js';
import { warnIfDamaged } from '../damage.js';

export interface DiffOpts {
  from?: string;
  to?: string;
  format: string;
  output?: string;
  source?: string;
}

export async function diffCommand(a: string, b: string | undefined, o: DiffOpts): Promise<void> {
  if (!['text', 'json', 'html'].includes(o.format)) throw new UserError(`--format wants text, json or html, got "${o.format}"`);
  const inputs = b === undefined ? [a] : [a, b];
  if (o.output !== undefined) OutputFile.check(o.output, { inputs });
  let diff;
  let damaged: string[];
  if (b !== undefined) {
    if (o.from !== undefined || o.to !== undefined) throw new UserError('--from/--to compare two points of one input: give one file, or drop them to compare two files');
    // Two ends of two traces: the analyses alone (no window grid needed).
    const ra = await analyzeInputs([a], { from: o.source, top: 1000, progress: startProgress });
    const rb = await analyzeInputs([b], { from: o.source, top: 1000, progress: startProgress });
    diff = diffTraces(ra.result, rb.result);
    damaged = [...ra.damaged, ...rb.damaged];
  } else {
    if (o.from === undefined && o.to === undefined) throw new UserError('give a second input to compare with, or --from/--to points of this one');
    const r = await analyzeWithWindow([a], { from: o.source, top: 1000, progress: startProgress });
    const res = r.result!;
    const end = Math.max(0, ...res.processes.map((p) => p.endT));
    const from = o.from !== undefined ? resolvePoint(o.from, res, '--from') : { t: 0, label: 'the start' };
    const to = o.to !== undefined ? resolvePoint(o.to, res, '--to') : { t: end, label: 'the end' };
    if (to.t < from.t) throw new UserError(`--to (${to.label}) comes before --from (${from.label})`);
    diff = diffPoints(res, r.window, from, to);
    damaged = r.damaged;
  }
  const text = await formatByName(DIFF_FORMATS, o.format).render(diff);
  if (o.output !== undefined) writeOutputFile(o.output, text, { inputs });
  else process.stdout.write(text);
  warnIfDamaged(damaged, 'the diff covers the readable part');
}
