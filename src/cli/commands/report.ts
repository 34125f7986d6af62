// `leakscope report FILE... -o report.html [--open]`: one self-contained HTML page (summary,
// memory over time with markers and a time range, flame graph, sites, pool tree).

import type { Command } from 'commander';
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { guard } from '../guard.js';
import { UserError } from '../errors.js';
import { analyzeWithWindow } from '../../analyses/window-run.js';
import { writeHtmlReport } from '../../reports/html/report.js';
import { outputError } from '../output.js';
import { warnIfDamaged } from '../damage.js';

interface ReportOpts {
  output?: string;
  open?: boolean;
  from?: string;
  pid?: string;
  top?: string;
  suppress?: string;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (charts, flame graph, sites, pools) of traces or logs')
    .argument('<files...>', 'traces (.lstrace) or logs the input layer reads')
    .requiredOption('-o, --output <file>', 'the HTML file to write')
    .option('--open', 'open the report in a browser when a desktop is available (else print its path)')
    .option('--from <source>', 'read the inputs as this source instead of detecting it')
    .option('--pid <pid>', 'only this process')
    .option('--top <n>', 'sites per process in the analysis')
    .option('--suppress <file>', 'suppressions file')
    .action(guard(async (files: string[], o: ReportOpts) => {
      const pid = intOpt('--pid', o.pid);
      const run = await analyzeWithWindow(files, { from: o.from, pid, top: intOpt('--top', o.top), suppress: o.suppress, progress: true });
      if (!run.result) throw new UserError('no analysis result');
      const out = resolve(o.output!);
      const bytes = await writeHtmlReport(out, run.result, run.window).catch((err: unknown) => {
        throw outputError(out, err);
      });
      process.stderr.write(`leakscope: wrote ${out} (${(bytes / 1024).toFixed(0)} KiB)\n`);
      warnIfDamaged(run.warnings);
      if (o.open) openInBrowser(out);
    }));
}

export function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  // --top 0 or --pid 0 would silently give an empty report.
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw new UserError(`${name} wants a positive whole number, got "${v}"`);
  return Number(v);
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
