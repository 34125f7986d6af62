// `leakscope attach` — traces running processes with eBPF uprobes (per-process attachment, no
// restart), pools included, then reports or keeps the trace.
// The implementation (attach-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { AttachCliOptions } from './attach-run.js';
import { choiceOption, durationOption, intOption, pidOption } from '../options.js';
import { DEFAULT_MAX_PROBE_RATE } from '../../attach/governor.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').filter(Boolean)];
}

export function register(program: Command): void {
  program
    .command('attach')
    .description('trace running processes with eBPF uprobes (malloc family, nginx/APR/custom pools), no restart')
    .addOption(pidOption('-p, --pid <pid>', 'trace this process'))
    .option('--children', 'with --pid: also its descendants, present and future')
    .option('--exe <path>', 'trace every process running this executable, including ones started later')
    .option('-a, --allocator <name|file>', 'allocator profile(s): libc, nginx, apr, or a .json file (default: chosen from the target\'s symbols)', collect)
    .option('--pool-allocs', 'also probe every pool allocation (costly: one uprobe per allocation)')
    .addOption(choiceOption('--mode <mode>', 'auto (the probes, unless they are hit more than --budget times a second over the first 5 s: then walk), events (probes: every pool lifecycle call into the trace, with creation stacks; full report), aggregate (live table kept in kernel maps, cheapest for malloc) or walk (pool allocators: no probe at all, the live pool trees are walked from their roots at every --pool-sample; what grows or piles up is seen, what lives between two walks is not, nor creation stacks). auto is events where walks cannot stand in (no pool roots to walk: libc, custom profiles without them) or per-call data is asked for (--pool-allocs, libc)', ['auto', 'events', 'aggregate', 'walk'], 'auto'))
    .addOption(intOption('--budget <hits/s>', `auto mode: probe hits per second across the traced processes above which the probes give way to walks (a hit stops the traced thread for ~3.5 µs); 0: no budget, the probes always`, 0, 1_000_000_000, DEFAULT_MAX_PROBE_RATE))
    .addOption(durationOption('-d, --duration <time>', 'stop after this long (30s, 5m); default: until Ctrl-C / SIGTERM or the targets exit'))
    .addOption(durationOption('-i, --interval <time>', 'every interval, print the sites and pools that grew most', { minMs: 100 }))
    .option('-o, --output <file>', 'keep the trace in this .lstrace file')
    .addOption(choiceOption('-f, --format <format>', 'report format', ['text', 'json'], 'text'))
    .addOption(intOption('--stack-bytes <n>', 'user stack bytes copied per event for unwinding (0: immediate caller and frame pointers only)', 0, 16384, 8192))
    .addOption(intOption('--ringbuf-mb <n>', 'ring buffer size in MiB (events beyond it are lost and counted); default 16, 64 with --pool-allocs or --allocator libc (an event per call)', 1, 1024))
    .addOption(durationOption('--pool-sample <time>', 'how often live pools\' sizes are read from process memory', { defaultText: '2s' }))
    .addOption(intOption('--top <n>', 'rows per report section', 1, 10000, 20))
    .option('--no-unwind', 'do not use the CFI unwinder (native/unwind)')
    .option('--no-report', 'with -o: keep the trace, print no report')
    .addHelpText('after', '\nMarkers: SIGUSR1 to the attach process (kill -USR1 <leakscope pid>) drops a marker "SIGUSR1 #N" for\nevery traced process on the trace\'s timeline (in -o FILE, the report, and the --interval view);\ntracing goes on. `diff --from/--to` take marker names as range edges.\n\nModes, the probes\' cost and the budget: docs/attach.md.\n')
    .action(guard(async (o: AttachCliOptions) => {
      const { attachCommand } = await loadCommand('attach', () => import('./attach-run.js'));
      await attachCommand(o);
    }));
}
