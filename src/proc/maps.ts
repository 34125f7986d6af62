// A process's memory mappings (/proc/PID/maps): which files its code comes from, and where.

import { readFileSync } from 'node:fs';

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  offset: number;
  /** The mapped file (' (deleted)' appended when it was replaced on disk), or '' / '[heap]'... */
  path: string;
}

/** The mappings of `pid`, none when it is gone (a zombie has none either). */
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
