// `leakscope kernel` — the kernel side alone: mappings, brk, shared memory, RSS, page faults,
// OOM kills and reclaim stalls of a process tree (or of an executable's processes) into a trace.
// The implementation (kernel-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { KernelOpts } from './kernel-run.js';
import { Option } from 'commander';
import { durationOption, MAX_PID, parseDuration, parseWhole } from '../options.js';

export function register(program: Command): void {
  program
    .command('kernel')
    .description('trace the kernel side of processes (mmap/munmap/mremap, brk, SysV shm, RSS, page faults, OOM kills, reclaim stalls) into a trace')
    .addOption(new Option('-p, --pid <pid...>', 'trace these processes and their descendants (also comma-separated)')
      .argParser((v: string, prev: number[] = []) => [...prev, ...v.split(',').filter(Boolean).map((s) => parseWhole(s, 1, MAX_PID))]))
    .option('--exe <path>', 'trace every process running or starting this executable')
    .addOption(durationOption('-d, --duration <time>', 'stop after this long (30s, 5m, 1h); default: until Ctrl-C or the targets exit'))
    .option('-o, --output <trace>', 'trace file to write, or - for stdout', 'kernel.lstrace')
    .addOption(new Option('--rss-interval <time>', 'RSS sampling period (0 = none)').argParser((v: string) => (v === '0' ? 0 : parseDuration(v))).default(1000, '1s'))
    .option('--faults', 'also count user page faults per process (every second)')
    .option('--no-machine', 'leave out machine-wide OOM kills and direct-reclaim stalls')
    .action(guard(async (o: KernelOpts) => {
      const { kernelCommand } = await loadCommand('kernel', () => import('./kernel-run.js'));
      await kernelCommand(o);
    }));
}
