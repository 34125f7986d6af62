// `leakscope export FILE... --to pprof|speedscope|collapsed -o OUT`: full-stack heap profiles for
// other tools (go tool pprof, speedscope, flamegraph.pl).

import type { Command } from 'commander';
import { resolve } from 'node:path';
import { guard } from '../guard.js';
import { UserError } from '../errors.js';
import { analyzeWithWindow } from '../../analyses/window-run.js';
import { pprofBytes } from '../../reports/export/pprof.js';
import { speedscope } from '../../reports/export/speedscope.js';
import { collapsed } from '../../reports/export/collapsed.js';
import type { CollapsedValue } from '../../reports/export/collapsed.js';
import { intOpt } from './report.js';
import { writeOutput } from '../output.js';
import { warnIfDamaged } from '../damage.js';

const FORMATS = ['pprof', 'speedscope', 'collapsed'] as const;
type Format = (typeof FORMATS)[number];

interface ExportOpts {
  to: string;
  output: string;
  from?: string;
  pid?: string;
  value?: string;
}

export function register(program: Command): void {
  program
    .command('export')
    .description('export heap profiles by full stack: pprof (go tool pprof), speedscope JSON, collapsed stacks')
    .argument('<files...>', 'traces (.lstrace) or logs the input layer reads')
    .requiredOption('--to <format>', `one of ${FORMATS.join(', ')}`)
    .requiredOption('-o, --output <file>', 'the file to write')
    .option('--from <source>', 'read the inputs as this source instead of detecting it')
    .option('--pid <pid>', 'only this process')
    .option('--value <what>', 'collapsed: inuse (outstanding bytes, default) or alloc (allocated bytes)', 'inuse')
    .action(guard(async (files: string[], o: ExportOpts) => {
      if (!(FORMATS as readonly string[]).includes(o.to)) throw new UserError(`--to wants one of ${FORMATS.join(', ')}, got "${o.to}"`);
      if (o.value !== 'inuse' && o.value !== 'alloc') throw new UserError(`--value wants inuse or alloc, got "${o.value}"`);
      const to = o.to as Format;
      const run = await analyzeWithWindow(files, { from: o.from, pid: intOpt('--pid', o.pid), windowOnly: true, progress: true });
      const body = to === 'pprof'
        ? pprofBytes(run.window, { meta: run.meta, inputs: files })
        : to === 'speedscope'
          ? JSON.stringify(speedscope(run.window, `leakscope: ${files.join(', ')}`))
          : collapsed(run.window, o.value as CollapsedValue);
      const out = resolve(o.output);
      await writeOutput(out, body);
      const stacks = run.window.processes.reduce((n, p) => n + p.stacks.size, 0);
      process.stderr.write(`leakscope: wrote ${out} (${to}, ${stacks} stacks, ${run.window.processes.length} processes)\n`);
      warnIfDamaged(run.warnings, 'the profile covers the readable part');
    }));
}
