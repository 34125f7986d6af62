// `leakscope doctor` — says what will and will not work on this machine (and for a target), and why.
// The implementation (doctor-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { DoctorOpts } from './doctor-run.js';
import { choiceOption, pidOption } from '../options.js';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check what leakscope can do here (root, uprobes, BPF, BTF, native parts, tools) and for a target (symbols, frame pointers, unwind tables, allocator profiles)')
    .addOption(pidOption('-p, --pid <pid>', 'also check this running process'))
    .option('--exe <path>', 'also check this executable')
    .addOption(choiceOption('--format <fmt>', 'what to print', ['text', 'json'], 'text'))
    .action(guard(async (o: DoctorOpts) => {
      const { doctorCommand } = await loadCommand('doctor', () => import('./doctor-run.js'));
      await doctorCommand(o);
    }));
}
