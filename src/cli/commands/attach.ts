// `leakscope attach` — traces running processes with eBPF uprobes (per-process attachment, no
// restart), pools included, then reports or keeps the trace.
// The implementation (attach-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { AttachCliOptions } from './attach-run.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').filter(Boolean)];
}

export function register(program: Command): void {
  program
    .command('attach')
    .description('trace running processes with eBPF uprobes (malloc family, nginx/APR/custom pools), no restart')
    .option('-p, --pid <pid>', 'trace this process')
    .option('--children', 'with --pid: also its descendants, present and future')
    .option('--exe <path>', 'trace every process running this executable, including ones started later')
    .option('-a, --allocator <name|file>', 'allocator profile(s): libc, nginx, apr, or a .json file (default: chosen from the target\'s symbols)', collect)
    .option('--pool-allocs', 'also probe every pool allocation (costly: one uprobe per allocation)')
    .option('--mode <mode>', 'events (stream every call into a trace, full report), aggregate (live table kept in kernel maps, cheapest for malloc) or walk (pool allocators: no probe at all, the live pool trees are walked from their roots at every --pool-sample; what grows or piles up is seen, what lives between two walks is not)', 'events')
    .option('-d, --duration <time>', 'stop after this long (30s, 5m); default: until Ctrl-C / SIGTERM or the targets exit')
    .option('-i, --interval <time>', 'every interval, print the sites and pools that grew most')
    .option('-o, --output <file>', 'keep the trace in this .lstrace file')
    .option('-f, --format <format>', 'report format: text or json', 'text')
    .option('--stack-bytes <n>', 'user stack bytes copied per event for unwinding (0: immediate caller and frame pointers only)', '8192')
    .option('--ringbuf-mb <n>', 'ring buffer size in MiB (events beyond it are lost and counted); default 16, 64 with --pool-allocs or --allocator libc (an event per call)')
    .option('--pool-sample <time>', 'how often live pools\' sizes are read from process memory', '2s')
    .option('--top <n>', 'rows per report section', '20')
    .option('--no-unwind', 'do not use the CFI unwinder (native/unwind)')
    .option('--no-report', 'with -o: keep the trace, print no report')
    .addHelpText('after', '\nMarkers: SIGUSR1 to the attach process (kill -USR1 <leakscope pid>) drops a marker "SIGUSR1 #N" for\nevery traced process on the trace\'s timeline (in -o FILE, the report, and the --interval view);\ntracing goes on. `diff --from/--to` take marker names as range edges.\n')
    .action(guard(async (o: AttachCliOptions) => {
      const { attachCommand } = await loadCommand('attach', () => import('./attach-run.js'));
      await attachCommand(o);
    }));
}
