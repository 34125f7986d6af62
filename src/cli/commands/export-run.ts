// `leakscope export FILE... --to pprof|speedscope|collapsed -o OUT`: full-stack heap profiles for
// other tools (go tool pprof, speedscope, flamegraph.pl).
// Registered by commands/export.ts, which loads this module only when the command runs.

import { resolve } from 'node:path';
import { startProgress } from '../progress.js';
import { analyzeWithWindow } from '../../pipeline/window-run.js';
import type { CollapsedValue } from '../../reports/export/collapsed.js';
import { formatByName, PROFILE_FORMATS } from '../../reports/formats.js';
import { OutputFile, writeOutputFile } from '../../io/output-file.js';
import { warnIfDamaged } from '../damage.js';

export interface ExportOpts {
  to: string;
  output: string;
  from?: string;
  pid?: number;
  value?: string;
}

export async function exportCommand(files: string[], o: ExportOpts): Promise<void> {
  const to = o.to;
  OutputFile.check(o.output, { inputs: files });
  const run = await analyzeWithWindow(files, { from: o.from, pid: o.pid, windowOnly: true, progress: startProgress });
  const body = await formatByName(PROFILE_FORMATS, to).render({ window: run.window, meta: run.meta, inputs: files, value: o.value as CollapsedValue });
  const out = o.output === '-' ? '-' : resolve(o.output);
  writeOutputFile(out, body, { inputs: files });
  const stacks = run.window.processes.reduce((n, p) => n + p.stacks.size, 0);
  process.stderr.write(`leakscope: wrote ${out === '-' ? 'stdout' : out} (${to}, ${stacks} stacks, ${run.window.processes.length} processes)\n`);
  warnIfDamaged(run.damaged, 'the profile covers the readable part');
}
