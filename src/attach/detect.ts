// Chooses allocator profiles from what the target defines: every shipped profile with a
// `detect` block whose symbols are all present; the highest priority among those wins (pool
// profiles over the libc fallback).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loaderPath } from './loader.js';
import { builtinProfileNames, loadProfile, type AllocatorProfile } from './profile.js';
import { findLibrary, readMaps } from './procfs.js';

/** The symbols of `wanted` that `path` defines (functions in .symtab or .dynsym). */
export function definedSymbols(path: string, wanted: string[]): Set<string> {
  if (!existsSync(loaderPath()) || !existsSync(path)) return new Set();
  try {
    const out = execFileSync(loaderPath(), ['symbols', path, ...wanted], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return new Set(out.split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

/** Profiles for a process (its maps tell where the libraries are) or, before one runs, an executable. */
export function detectProfiles(target: { pid?: number; exe: string }): AllocatorProfile[] {
  const maps = target.pid !== undefined ? readMaps(target.pid) : [];
  const matches: { p: AllocatorProfile; prio: number }[] = [];
  for (const name of builtinProfileNames()) {
    const p = loadProfile(name);
    if (!p.detect) continue;
    const path = p.detect.in === 'exe' ? target.exe : findLibrary(maps, p.detect.in);
    if (!path) continue;
    const got = definedSymbols(path, p.detect.symbols);
    if (p.detect.symbols.every((s) => got.has(s))) matches.push({ p, prio: p.detect.priority ?? 0 });
  }
  if (matches.length === 0) return [];
  const best = Math.max(...matches.map((m) => m.prio));
  return matches.filter((m) => m.prio === best).map((m) => m.p);
}
