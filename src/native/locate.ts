// Where leakscope's own files are: the package root, and where the native parts are: built into the package's own native/ (at install, by
// `npm run build`, or on first use when that directory is writable), else into a per-user
// cache, $XDG_CACHE_HOME (or ~/.cache)/leakscope/VERSION/native, when the package directory is
// not writable (a root-owned global install used by another user). Both are looked in, the
// package's first.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATIVE, type NativeName } from './parts.js';

/** The package root: two levels above this file, from src/native/ (tsx) and dist/native/ alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A path inside the package (its shipped data: profiles/, the web bundle). */
export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}

export function packageVersion(root = PACKAGE_ROOT): string {
  try {
    return String((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** The per-user cache's native directory, or undefined when there is no home to put it in. */
export function cacheNativeDir(root = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  let base = xdg && isAbsolute(xdg) ? xdg : undefined; // the XDG spec: a relative one is ignored
  if (!base) {
    let home = env.HOME;
    if (!home) try { home = homedir(); } catch { home = undefined; }
    if (!home || !isAbsolute(home)) return undefined;
    base = join(home, '.cache');
  }
  return join(base, 'leakscope', packageVersion(root), 'native');
}

/** The native directories looked in, the package's first. */
export function nativeDirs(root = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): string[] {
  const cache = cacheNativeDir(root, env);
  return [join(root, 'native'), ...(cache ? [cache] : [])];
}

/** Where a native file is, or undefined when it is built in neither directory. */
export function findNative(name: NativeName, root = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const d of nativeDirs(root, env)) {
    const p = join(d, NATIVE[name].file);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Where a native file is, else where the package would have it (for messages). */
export function nativePath(name: NativeName, root = PACKAGE_ROOT): string {
  return findNative(name, root) ?? join(root, 'native', NATIVE[name].file);
}

/** The command that builds the native parts: `npm run build` in a checkout, else `leakscope setup`. */
export function buildCommand(root = PACKAGE_ROOT): string {
  return existsSync(join(root, 'src')) ? 'npm run build' : 'leakscope setup';
}

/** The command that builds again parts that look built (a build older than one of its files). */
export function rebuildCommand(root = PACKAGE_ROOT): string {
  const b = buildCommand(root);
  return b === 'leakscope setup' ? `${b} --rebuild` : b;
}

function writable(p: string): boolean {
  try { accessSync(p, constants.W_OK); return true; } catch { return false; }
}

/** Where a build goes: the package's native/ when it (and each part's directory in it) is
 *  writable, else the per-user cache; undefined when neither can be written. */
export function buildTarget(root = PACKAGE_ROOT, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const own = join(root, 'native');
  const parts = [...new Set(Object.values(NATIVE).map((n) => n.file.split('/')[0]!))];
  const dirs = [own, ...parts.flatMap((p) => [join(own, p), join(own, p, 'build')])].filter((d) => existsSync(d));
  if (dirs.every(writable)) return own;
  const cache = cacheNativeDir(root, env);
  if (!cache) return undefined;
  // The cache's nearest existing ancestor decides (it is created on the way).
  let d = cache;
  while (!existsSync(d)) d = join(d, '..');
  return writable(d) ? cache : undefined;
}
