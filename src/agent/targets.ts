// Which processes a target means: every process running an executable, every process of a
// name (/proc/PID/comm), every process in a systemd unit's cgroup, or a pid and its descendants.
// Each rule is a function the attach session calls on its scans (forks are followed besides).

import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { allPids, descendants, exeOf, nameOf, pidAlive, pidsRunning } from '../proc/processes.js';
import { readMaps } from '../proc/maps.js';
import type { TargetConfig } from './config.js';

export type Matcher = () => number[];

export function matcherFor(t: TargetConfig, cgroupRoot = '/sys/fs/cgroup'): Matcher {
  if (t.exe !== undefined) {
    const exe = t.exe;
    return () => {
      // resolved at each scan: the file may be installed, replaced or symlinked anew
      let real: string;
      try {
        real = realpathSync(exe);
      } catch {
        return [];
      }
      return pidsRunning(real);
    };
  }
  if (t.process !== undefined) {
    const name = t.process;
    return () => allPids().filter((p) => p !== process.pid && nameOf(p) === name && pidAlive(p));
  }
  if (t.unit !== undefined) {
    const unit = t.unit;
    return () => unitPids(cgroupRoot, unit).filter((p) => p !== process.pid && pidAlive(p));
  }
  const pid = t.pid!;
  return () => (pidAlive(pid) ? [pid, ...descendants(pid)] : []);
}

/** The cgroup directories of a unit (cgroup v2 and the v1 systemd hierarchy). */
export function unitDirs(root: string, unit: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (n === unit) {
        out.push(p);
        continue;
      }
      // units live in slices (system.slice, user.slice/user-1000.slice/...): look only there
      if (depth < 4 && (n.endsWith('.slice') || n === 'systemd' || n === 'unified') && isDir(p)) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Every pid in the unit's cgroups, sub-cgroups included. */
export function unitPids(root: string, unit: string): number[] {
  const pids = new Set<number>();
  const read = (dir: string, depth: number): void => {
    try {
      for (const l of readFileSync(join(dir, 'cgroup.procs'), 'latin1').split('\n')) if (l) pids.add(Number(l));
    } catch {
      return;
    }
    if (depth > 8) return;
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) read(join(dir, e.name), depth + 1);
    } catch {
      // gone meanwhile
    }
  };
  for (const d of unitDirs(root, unit)) read(d, 0);
  return [...pids].sort((a, b) => a - b);
}

/** Where the executable's code is mapped in the process now (an exec, even of the same file,
 *  maps it elsewhere), or undefined when it cannot be read. */
export function exeCodeBase(pid: number): number | undefined {
  const exe = exeOf(pid);
  if (!exe) return undefined;
  for (const m of readMaps(pid)) if (m.perms[2] === 'x' && m.path.replace(/ \(deleted\)$/, '') === exe) return m.start;
  return undefined;
}

export function describeTarget(t: TargetConfig): string {
  if (t.exe !== undefined) return `every process running ${t.exe}${existsSync(t.exe) ? '' : ' (not there yet)'}`;
  if (t.process !== undefined) return `every process named ${t.process}`;
  if (t.unit !== undefined) return `every process of unit ${t.unit}`;
  return `process ${t.pid} and its descendants`;
}
