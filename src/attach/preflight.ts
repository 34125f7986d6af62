// Before `attach` loads anything: targets it can never trace are refused with the reason (one
// line, exit 2), instead of being "traced" for the whole duration with nothing to show — a
// kernel thread, leakscope itself, a statically linked program whose allocator is not where the
// profile looks, a profile none of whose functions the target defines.

import { basename } from 'node:path';
import { UserError } from '../errors.js';
import { ElfFile } from '../symbols/elf.js';
import { definedFunctions } from '../symbols/elf.js';
import type { AllocatorProfile, ProfileFunction } from './profile.js';
import { exeOf, isKernelThread, nameOf } from '../proc/processes.js';
import { findLibrary, readMaps } from '../proc/maps.js';

/** Whether `exe` loads no shared library (no DT_NEEDED: static, or static-pie). */
export function isStatic(exe: string): boolean {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(exe);
  } catch {
    return false;
  }
  try {
    return elf.needed().length === 0;
  } catch {
    return false;
  } finally {
    elf.close();
  }
}

function names(profiles: AllocatorProfile[]): string {
  return profiles.map((p) => p.name).join(', ');
}

function symbolList(fns: ProfileFunction[]): string {
  const syms = [...new Set(fns.map((f) => f.symbol))];
  return syms.length > 4 ? `${syms.slice(0, 4).join(', ')}, ...` : syms.join(', ');
}

/** How many of the profiles' functions `pid` (or, with no pid, the executable file) defines
 *  where the profile says they are. Library functions without a running process: unknown (-1). */
function resolvable(profiles: AllocatorProfile[], exe: string, pid: number | undefined): number {
  const maps = pid !== undefined ? readMaps(pid) : undefined;
  // a static program never loads a library: its library functions are surely absent
  const staticExe = !maps && isStatic(exe);
  const byPath = new Map<string, string[]>();
  let unknown = false;
  for (const p of profiles) {
    for (const f of p.functions) {
      const path = f.in === 'exe' ? exe : maps ? findLibrary(maps, f.in) : undefined;
      if (!path) {
        if (!maps && !staticExe && f.in !== 'exe') unknown = true;
        continue;
      }
      const list = byPath.get(path) ?? [];
      list.push(f.symbol);
      byPath.set(path, list);
    }
  }
  let n = 0;
  for (const [path, syms] of byPath) n += definedFunctions(path, syms).size;
  return n === 0 && unknown ? -1 : n;
}

/** Refuses a --pid that is no user-space process of someone else: leakscope itself, a kernel thread. */
export function checkProcess(pid: number): string {
  if (pid === process.pid) throw new UserError(`process ${pid} is this leakscope attach itself: it cannot trace itself; give the server's pid`);
  if (isKernelThread(pid)) throw new UserError(`process ${pid} (${nameOf(pid) || 'no name'}) is a kernel thread: it has no user-space allocator to trace`);
  const exe = exeOf(pid);
  if (!exe) throw new UserError(`process ${pid}: its executable cannot be read (/proc/${pid}/exe); is it exiting?`);
  return exe;
}

/** Refuses a --pid target whose allocator the profiles cannot reach. */
export function checkPid(pid: number, profiles: AllocatorProfile[], children: boolean, descendants: number[]): void {
  const exe = checkProcess(pid);
  if (resolvable(profiles, exe, pid) > 0) return;
  // with --children, a descendant that has the allocator is enough
  if (children && descendants.some((d) => d !== process.pid && !isKernelThread(d) && resolvable(profiles, exeOf(d) ?? '', d) > 0)) return;
  throw new UserError(noneReason(profiles, exe, `process ${pid} (${basename(exe)})`));
}

/** Refuses an --exe target that can never be traced (checked on a running process when there
 *  is one, else on the file: only what is sure from the file alone is refused). */
export function checkExe(exe: string, profiles: AllocatorProfile[], running: number[]): void {
  const pid = running.find((p) => p !== process.pid);
  const n = resolvable(profiles, exe, pid);
  if (n !== 0) return;
  throw new UserError(noneReason(profiles, exe, pid !== undefined ? `process ${pid} (${basename(exe)})` : exe));
}

function noneReason(profiles: AllocatorProfile[], exe: string, what: string): string {
  const fns = profiles.flatMap((p) => p.functions);
  const libs = [...new Set(fns.filter((f) => f.in !== 'exe').map((f) => f.in))];
  if (libs.length && isStatic(exe)) {
    return `${what} is statically linked: it loads no ${libs.join(' or ')}, where the ${names(profiles)} profile's functions are; ` +
      `write a profile with "in": "exe" for its allocator (docs/allocator-profiles.md)`;
  }
  return `${what} defines none of the functions of the ${names(profiles)} profile (${symbolList(fns)}) where the profile looks for them; ` +
    `nothing would be traced: choose another --allocator or write a profile for its allocator (docs/allocator-profiles.md)`;
}
