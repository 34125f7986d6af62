// `leakscope mark PID "label" [--trace FILE]`: appends a MARKER chunk to the live trace of a
// process, timed on the trace's timeline (CLOCK_MONOTONIC now - the trace's startMonoNs). The
// trace is found through LEAKSCOPE_TRACE in /proc/PID/environ unless --trace names it. One
// chunk, one write() on an O_APPEND descriptor: safe beside the recorder's own writes.
// The implementation (mark-run.ts) is loaded only when the command runs.

import { Argument, type Command } from 'commander';
import { MAX_PID, parseWhole } from '../options.js';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { MarkOpts } from './mark-run.js';

export function register(program: Command): void {
  program
    .command('mark')
    .description('add a labelled marker, now, to the live trace of a process (reports draw it and accept it as a range edge)')
    .addArgument(new Argument('<pid>', 'the traced process').argParser((v: string) => parseWhole(v, 1, MAX_PID)))
    .argument('<label>', 'the marker\'s text')
    .option('--trace <file>', 'the trace file (default: LEAKSCOPE_TRACE from the process\'s environment)')
    .action(guard(async (pidArg: number, label: string, o: MarkOpts) => {
      const { markCommand } = await loadCommand('mark', () => import('./mark-run.js'));
      await markCommand(pidArg, label, o);
    }));
}
