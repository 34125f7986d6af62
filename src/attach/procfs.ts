// What /proc says about processes: who runs which binary, parents, mappings.

import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  offset: number;
  path: string;
}

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

/** The process's name (/proc/PID/comm): kernel threads have no command line. */
export function nameOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export function allPids(): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) if (/^\d+$/.test(n)) out.push(Number(n));
  return out;
}

export function readMaps(pid: number): Mapping[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return [];
  }
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    // start-end perms offset dev inode path
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, offset: parseInt(m[4]!, 16), path: m[6] ?? '' });
  }
  return out;
}

/** File-backed executable mappings: the modules whose code can appear in a stack. */
export function codeMappings(maps: Mapping[]): Mapping[] {
  return maps.filter((m) => m.perms[2] === 'x' && m.path.startsWith('/'));
}

/** The mapped file whose name starts with `prefix` (`libc.so.6`, `libapr-1.so`), if any. */
export function findLibrary(maps: Mapping[], prefix: string): string | undefined {
  for (const m of maps) {
    if (!m.path.startsWith('/')) continue;
    const name = m.path.slice(m.path.lastIndexOf('/') + 1);
    if (name.startsWith(prefix)) return m.path.replace(/ \(deleted\)$/, '');
  }
  return undefined;
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

/** Processes whose executable is `exe` (a resolved path). */
export function pidsRunning(exe: string): number[] {
  const out: number[] = [];
  for (const p of allPids()) if (p !== process.pid && exeOf(p) === exe && pidAlive(p)) out.push(p);
  return out.sort((a, b) => a - b);
}
