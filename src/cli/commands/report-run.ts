// `leakscope report FILE... -o report.html [--open]`: one self-contained HTML page (summary,
// memory over time with markers and a time range, flame graph, sites, pool tree).
// Registered by commands/report.ts, which loads this module only when the command runs.

import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { startProgress } from '../progress.js';
import { analyzeWithWindow } from '../../pipeline/window-run.js';
import { ANALYSIS_FORMATS, formatByName } from '../../reports/formats.js';
import { OutputFile, writeOutputFile } from '../../io/output-file.js';
import { warnIfDamaged } from '../damage.js';
import { intOpt } from '../int-option.js';

export interface ReportOpts {
  output?: string;
  open?: boolean;
  from?: string;
  pid?: string;
  top?: string;
  suppress?: string;
}

function openInBrowser(path: string): void {
  const desktop = process.env.DISPLAY || process.env.WAYLAND_DISPLAY;
  const hasXdg = spawnSync('sh', ['-c', 'command -v xdg-open'], { stdio: 'ignore' }).status === 0;
  if (!desktop || !hasXdg) {
    process.stdout.write(`${path}\n`);
    return;
  }
  const child = spawn('xdg-open', [path], { detached: true, stdio: 'ignore' });
  child.on('error', () => process.stdout.write(`${path}\n`));
  child.unref();
}

export async function reportCommand(files: string[], o: ReportOpts): Promise<void> {
  const pid = intOpt('--pid', o.pid);
  // Checked before the analysis: an output that is an input, a directory or another user's
  // symlink is refused at once, not after minutes of reading.
  OutputFile.check(o.output!, { inputs: files });
  const run = await analyzeWithWindow(files, { from: o.from, pid, top: intOpt('--top', o.top), suppress: o.suppress, progress: startProgress });
  if (!run.result) throw new UserError('no analysis result');
  const html = await formatByName(ANALYSIS_FORMATS, 'html').render({ result: run.result, window: run.window });
  const out = o.output === '-' ? '-' : resolve(o.output!);
  writeOutputFile(out, html, { inputs: files });
  if (out !== '-') process.stderr.write(`leakscope: wrote ${out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB)\n`);
  warnIfDamaged(run.damaged);
  if (o.open && out !== '-') openInBrowser(out);
}
