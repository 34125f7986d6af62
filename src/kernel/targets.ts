// Finds the processes to trace: given pids (checked), or every process running an executable.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';

export interface ProcessInfo { pid: number; ppid: number; exe: string; command: string }

/** What /proc says of a live process, or undefined when it is gone (or not a process). */
export function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const tgid = Number(/^Tgid:\s+(\d+)/m.exec(status)?.[1]);
    if (tgid !== pid) return undefined;
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch { /* kernel thread or no permission */ }
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
    return { pid, ppid, exe, command };
  } catch {
    return undefined;
  }
}

/** The pids of every process whose executable is `exe` (compared after resolving links). */
export function pidsOfExe(exe: string): number[] {
  let want: string;
  try {
    want = realpathSync(exe);
  } catch {
    want = exe;
  }
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/exe`).replace(/ \(deleted\)$/, '') === want) out.push(Number(name));
    } catch { /* gone, or a kernel thread */ }
  }
  return out.sort((a, b) => a - b);
}

/** Every live descendant of `pid` (workers of a master process). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let kids: string;
    try {
      kids = readdirSync(`/proc/${p}/task`).map((t) => readFileSync(`/proc/${p}/task/${t}/children`, 'utf8')).join(' ');
    } catch {
      return;
    }
    for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
      if (!out.includes(k)) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}
