// What /proc says about processes: which are alive, their parents, executables, command lines
// and start times, who runs a binary, and a process's descendants. The one place leakscope asks
// /proc about processes (maps.ts: their mappings, memory.ts: their memory, modules.ts: the
// modules their code runs in).

import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // a zombie has exited: its probes are gone and its memory freed
    return statState(stat) !== 'Z';
  } catch {
    return false;
  }
}

function statState(stat: string): string {
  const close = stat.lastIndexOf(')');
  return stat.slice(close + 2, close + 3);
}

export function ppidOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]) || 0;
  } catch {
    return 0;
  }
}

/** A kernel thread (PF_KTHREAD in the flags of /proc/PID/stat): no user-space memory. */
export function isKernelThread(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[6]) & 0x00200000) !== 0;
  } catch {
    return false;
  }
}

/** When the process started, in clock ticks since boot (field 22 of /proc/PID/stat). */
export function startTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]) || 0;
  } catch {
    return 0;
  }
}

/** CPU time the process has used, user and system (fields 14 and 15 of /proc/PID/stat), in
 *  seconds (USER_HZ ticks of 1/100 s: a uprobe's trap is system time of the traced process);
 *  0 when it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) || 0) + (Number(rest[12]) || 0)) / 100;
  } catch {
    return 0;
  }
}

/** Now, in the clock ticks of startTicks (USER_HZ is 100 on Linux). */
export function uptimeTicks(): number {
  try {
    return Math.floor(Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]) * 100);
  } catch {
    return 0;
  }
}

export function exeOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The process's name (/proc/PID/comm, exactly: it may hold spaces): kernel threads have no command line. */
export function nameOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
  } catch {
    return '';
  }
}

export function allPids(): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) if (/^\d+$/.test(n)) out.push(Number(n));
  return out;
}

/** The children of each thread of `pid` (/proc/PID/task/TID/children), or undefined when the
 *  kernel does not list them (CONFIG_PROC_CHILDREN). */
function childrenOf(pid: number): number[] | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(`/proc/${pid}/task/${tid}`)) return undefined;
      continue;
    }
    for (const c of text.split(' ')) if (c.trim()) out.push(Number(c));
  }
  return out;
}

/** Processes descended from `root` (children, grandchildren...). From the children lists of
 *  the tree's own processes when the kernel keeps them: the attach session asks 4 times a
 *  second, and reading every process's stat cost it more than its events on a busy host. */
export function descendants(root: number): number[] {
  const fast = new Set<number>();
  const todo = [root];
  let complete = true;
  for (let guard = 0; todo.length && guard < 65536; guard++) {
    const kids = childrenOf(todo.pop()!);
    if (kids === undefined) { complete = false; break; }
    for (const k of kids) if (k !== root && !fast.has(k)) { fast.add(k); todo.push(k); }
  }
  if (complete) return [...fast].sort((a, b) => a - b);
  const parent = new Map<number, number>();
  for (const p of allPids()) parent.set(p, ppidOf(p));
  const out: number[] = [];
  for (const [p] of parent) {
    let q = parent.get(p);
    let guard = 0;
    while (q && q !== root && guard++ < 64) q = parent.get(q);
    if (q === root) out.push(p);
  }
  return out.sort((a, b) => a - b);
}

/** The live processes (not this one) whose executable is `exe`, compared after resolving links. */
export function pidsRunning(exe: string): number[] {
  let want: string;
  try {
    want = realpathSync(exe);
  } catch {
    want = exe;
  }
  const out: number[] = [];
  for (const p of allPids()) if (p !== process.pid && exeOf(p) === want && pidAlive(p)) out.push(p);
  return out.sort((a, b) => a - b);
}

export interface ProcessInfo { pid: number; ppid: number; exe: string; command: string }

/** What /proc says of a live process, or undefined when it is gone or is a thread, not a process. */
export function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const tgid = Number(/^Tgid:\s+(\d+)/m.exec(status)?.[1]);
    if (tgid !== pid) return undefined;
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return { pid, ppid, exe: exeOf(pid) ?? '', command: commandOf(pid) };
  } catch {
    return undefined;
  }
}

/** The environment of `pid` as NAME=VALUE strings. Throws the read's error (ENOENT: no such
 *  process, or a kernel thread or exiting process, which has none; EACCES: not ours to read). */
export function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
}

/** The working directory of `pid`; throws when it cannot be read. */
export function cwdOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/cwd`);
}

/** The pid of the process ptracing `pid` (a debugger), 0 when none or unknown. */
export function tracerOf(pid: number): number {
  try {
    return Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** `tid` is a thread of process `pid` (other than its main thread). */
export function isThreadOf(pid: number, tid: number): boolean {
  return tid !== pid && existsSync(`/proc/${pid}/task/${tid}`);
}


/** A path that opens the very file `pid` runs, even if it was replaced on disk since. */
export function runningFile(pid: number): string {
  return `/proc/${pid}/exe`;
}

/** The path that opens `path` as process `pid` sees it (inside its mount namespace: a container's). */
export function pathIn(pid: number, path: string): string {
  return `/proc/${pid}/root${path}`;
}
