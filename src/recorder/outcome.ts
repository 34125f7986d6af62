// How a command under `leakscope run` ended, told truthfully: a command killed by a signal is
// said to be (in one `leakscope:` line), and run's report has it ended even when the recorder
// could not write EXIT (SIGKILL, an OOM kill), never "still running"; a process that made no
// allocation call the recorder could see is said to, with what to try instead.

import { constants } from 'node:os';
import type { AnalysisResult, ProcessReport } from '../analyses/result.js';
import { ElfFile } from '../symbols/elf.js';

/** "SIGSEGV (signal 11, core dumped)"-style name of a signal. */
export function signalName(sig: NodeJS.Signals): string {
  const n = (constants.signals as Record<string, number>)[sig];
  return n === undefined ? sig : `${sig} (signal ${n})`;
}

/**
 * The command's process as `run` saw it end: a SIGKILL (an OOM kill) leaves the recorder no
 * chance to write EXIT, and a report would call the process still running. The trace keeps what
 * the recorder wrote; the report made from it now says how the command ended.
 */
export function markEnded(r: AnalysisResult, pid: number, code: number): void {
  const images = r.processes.filter((p) => p.pid === pid);
  const last = images[images.length - 1];
  if (last && !last.exited) {
    last.exited = true;
    last.exitCode = code;
  }
}

/** Whether the ELF file defines a malloc of its own in its dynamic symbols (it then wins over ours). */
function definesMalloc(path: string): boolean {
  try {
    const elf = ElfFile.open(path);
    try {
      return elf.functions('.dynsym').some((f) => f.name === 'malloc');
    } finally {
      elf.close();
    }
  } catch {
    return false;
  }
}

/** A command line from the trace, with control characters shown as escapes (it goes to a terminal). */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One warning per process that made no allocation call the recorder saw (none at all, not even the C library's own). */
export function allocatorWarnings(r: AnalysisResult): string[] {
  const out: string[] = [];
  // Only processes that ended by themselves: a killed one may have lost its last records.
  const quiet = (p: ProcessReport): boolean => p.exited && (p.exitCode ?? 0) < 128 && !p.replacedByExec &&
    p.allocated.count === 0 && p.allocated.frees === 0 && p.poolClasses.length === 0;
  for (const p of r.processes.filter(quiet)) {
    const who = `pid ${p.pid} (${printable(p.command || p.exe || '?')})`;
    const why = p.exe && definesMalloc(p.exe)
      ? `its executable defines malloc itself, so the C library's allocator that \`leakscope run\` interposes is never called`
      : `it allocated nothing, or uses an allocator of its own (not the C library's malloc family or APR pools, which \`leakscope run\` interposes)`;
    out.push(`${who} made no allocation call that the recorder could see: ${why}; its verdict "${p.verdict.verdict}" rests on no data. ` +
      'To trace its own allocator, describe it in a profile and use `leakscope attach --allocator PROFILE` (docs/allocator-profiles.md)');
  }
  return out;
}
