// Samples the resident set of the traced processes from /proc/PID/statm.
import { readFileSync } from 'node:fs';

const PAGE = 4096; // x86-64

/** Resident bytes of `pid`, or undefined when it is gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    const pages = Number(f[1]);
    return Number.isFinite(pages) ? pages * PAGE : undefined;
  } catch {
    return undefined;
  }
}
