// `leakscope export FILE... --to pprof|speedscope|collapsed -o OUT`: full-stack heap profiles for
// other tools (go tool pprof, speedscope, flamegraph.pl).
// Registered by commands/export.ts, which loads this module only when the command runs.

import { resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { startProgress } from '../progress.js';
import { analyzeWithWindow } from '../../pipeline/window-run.js';
import type { CollapsedValue } from '../../reports/export/collapsed.js';
import { formatByName, formatNames, PROFILE_FORMATS } from '../../reports/formats.js';
import { intOpt } from '../int-option.js';
import { OutputFile, writeOutputFile } from '../../io/output-file.js';
import { warnIfDamaged } from '../damage.js';

export interface ExportOpts {
  to: string;
  output: string;
  from?: string;
  pid?: string;
  value?: string;
}

export async function exportCommand(files: string[], o: ExportOpts): Promise<void> {
  if (!formatNames(PROFILE_FORMATS).includes(o.to)) throw new UserError(`--to wants one of ${formatNames(PROFILE_FORMATS).join(', ')}, got "${o.to}"`);
  if (o.value !== 'inuse' && o.value !== 'alloc') throw new UserError(`--value wants inuse or alloc, got "${o.value}"`);
  const to = o.to;
  OutputFile.check(o.output, { inputs: files });
  const run = await analyzeWithWindow(files, { from: o.from, pid: intOpt('--pid', o.pid), windowOnly: true, progress: startProgress });
  const body = await formatByName(PROFILE_FORMATS, to).render({ window: run.window, meta: run.meta, inputs: files, value: o.value as CollapsedValue });
  const out = o.output === '-' ? '-' : resolve(o.output);
  writeOutputFile(out, body, { inputs: files });
  const stacks = run.window.processes.reduce((n, p) => n + p.stacks.size, 0);
  process.stderr.write(`leakscope: wrote ${out === '-' ? 'stdout' : out} (${to}, ${stacks} stacks, ${run.window.processes.length} processes)\n`);
  warnIfDamaged(run.damaged, 'the profile covers the readable part');
}
