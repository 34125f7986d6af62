// `leakscope report FILE... -o report.html [--open]`: one self-contained HTML page (summary,
// memory over time with markers and a time range, flame graph, sites, pool tree).
// The implementation (report-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { ReportOpts } from './report-run.js';
import { intOption, pidOption } from '../options.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (charts, flame graph, sites, pools) of traces or logs')
    .argument('<files...>', 'traces (.lstrace) or logs the input layer reads')
    .requiredOption('-o, --output <file>', 'the HTML file to write, or - for stdout')
    .option('--open', 'open the report in a browser when a desktop is available (else print its path)')
    .option('--from <source>', 'read the inputs as this source instead of detecting it')
    .addOption(pidOption('--pid <pid>', 'only this process'))
    .addOption(intOption('--top <n>', 'sites per process in the analysis', 1, 1_000_000))
    .option('--suppress <file>', 'suppressions file')
    .action(guard(async (files: string[], o: ReportOpts) => {
      const { reportCommand } = await loadCommand('report', () => import('./report-run.js'));
      await reportCommand(files, o);
    }));
}
