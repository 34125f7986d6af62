// Chooses allocator profiles from what the target defines: every shipped profile with a
// `detect` block whose symbols are all present; the highest priority among those wins (pool
// profiles over the libc fallback). `doctor` shows the same matches (matchingProfiles).

import { builtinProfileNames, loadProfile, type AllocatorProfile } from './profile.js';
import { findLibrary, readMaps } from '../proc/maps.js';
import { definedFunctions } from '../symbols/elf.js';

export interface ProfileMatch {
  profile: AllocatorProfile;
  /** The file that defines the profile's detect symbols. */
  path: string;
  priority: number;
}

/** Every shipped profile whose detect symbols are all defined where it says: in `exe`, or in the
 *  library `library(prefix)` finds. `tried`: the profiles that have a detect block. */
export function matchingProfiles(exe: string, library: (prefix: string) => string | undefined): { matches: ProfileMatch[]; tried: string[] } {
  const matches: ProfileMatch[] = [];
  const tried: string[] = [];
  for (const name of builtinProfileNames()) {
    const p = loadProfile(name);
    if (!p.detect) continue;
    tried.push(p.name);
    const path = p.detect.in === 'exe' ? exe : library(p.detect.in);
    if (!path) continue;
    const got = definedFunctions(path, p.detect.symbols);
    if (p.detect.symbols.every((s) => got.has(s))) matches.push({ profile: p, path, priority: p.detect.priority ?? 0 });
  }
  return { matches, tried };
}

/** The highest-priority matches among `matches`. */
export function bestMatches(matches: ProfileMatch[]): ProfileMatch[] {
  const best = Math.max(...matches.map((m) => m.priority));
  return matches.filter((m) => m.priority === best);
}

/** Profiles for a process (its maps tell where the libraries are) or, before one runs, an executable. */
export function detectProfiles(target: { pid?: number; exe: string }): AllocatorProfile[] {
  const maps = target.pid !== undefined ? readMaps(target.pid) : [];
  return bestMatches(matchingProfiles(target.exe, (prefix) => findLibrary(maps, prefix)).matches).map((m) => m.profile);
}
