// Checks of leakscope's own native parts (native/<part>/): which are built and where (the
// package's native/ or the per-user cache, src/native/locate.ts), and for the others whether
// the first command that needs one builds it, or which packages it lacks, with the command that
// builds them.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { check, type Check } from './check.js';
import { buildCommand, buildTarget, findNative, nativeDirs } from '../native/locate.js';
import { NATIVE, NATIVE_NAMES, type NativeName } from '../native/parts.js';

type Missing = { pkg: string; parts: string[] }[] | string;

const artifactOf = (n: NativeName) => NATIVE[n].file.split('/').pop()!;

/** Why a part (native/PART or PART/SUB) is not built, whether that fails its check, and the fix. */
function notBuilt(root: string, part: string, missing: Missing): { why: string; fix: string; buildable: boolean } {
  const lack = typeof missing === 'string' ? [] : missing.filter((m) => m.parts.includes(part)).map((m) => m.pkg);
  if (lack.length) return { why: `not built: missing ${lack.join(' ')}`, fix: `apt-get install -y ${lack.join(' ')}, then ${buildCommand(root)}`, buildable: false };
  if (!buildTarget(root)) return { why: `not built, and ${join(root, 'native')} is not writable`, fix: `sudo ${buildCommand(root)}`, buildable: false };
  return { why: 'not built yet: the first command that needs it builds it', fix: `${buildCommand(root)} builds it now`, buildable: true };
}

/** "in the package" or "in the user cache", and the directory. */
function where(root: string, path: string): { short: string; long: string } {
  const own = join(root, 'native');
  const inOwn = path.startsWith(own + '/');
  const dir = inOwn ? own : nativeDirs(root).find((d) => path.startsWith(d + '/')) ?? path;
  return { short: inOwn ? 'in the package' : 'in the user cache', long: dir };
}

/** What each part is for and the native file that shows it was built (native/parts.ts). Parts not listed are checked generically. */
const PARTS: Record<string, { name: NativeName; what: string; artifact: string; required: boolean }> = Object.fromEntries(
  NATIVE_NAMES.filter((n) => !NATIVE[n].part.includes('/'))
    .map((n) => [NATIVE[n].part, { name: n, what: NATIVE[n].role, artifact: artifactOf(n), required: NATIVE[n].required }]),
);

export function nativeChecks(root: string, missing: Missing = []): Check[] {
  const dir = join(root, 'native');
  const parts = existsSync(dir) ? readdirSync(dir).filter((p) => existsSync(join(dir, p, 'Makefile'))).sort() : [];
  const out = parts.map((part) => {
    const known = PARTS[part];
    let path: string | undefined;
    let files: string[] = [];
    if (known) path = findNative(known.name, root);
    else {
      const b = nativeDirs(root).map((d) => join(d, part, 'build')).find((d) => existsSync(d));
      files = b ? readdirSync(b).filter((f) => !/\.(o|h|a)$/.test(f)) : [];
      if (files.length) path = join(b!, files[0]!);
    }
    const nb = path ? undefined : notBuilt(root, part, missing);
    const at = path ? where(root, path) : undefined;
    return check({
      id: `native-${part}`, group: 'native', required: known?.required ?? false,
      status: path ? 'ok' : known?.required && !nb!.buildable ? 'fail' : 'warn',
      title: `native/${part}: ${path ? `built (${known ? known.artifact : files.join(', ')}) ${at!.short}` : nb!.why}`,
      detail: `${known?.what ?? 'native part'}${at ? `; ${at.long}` : ''}`,
      fix: nb?.fix,
    });
  });
  // Optional extras of a part: built only when their own toolchain is there.
  for (const x of EXTRAS) {
    if (!parts.includes(x.part) || !findNative(PARTS[x.part]!.name, root)) continue;
    const path = findNative(x.name, root);
    const nb = path ? undefined : notBuilt(root, x.sub, missing);
    out.push(check({
      id: `native-${x.part}-${x.artifact}`, group: 'native', status: path ? 'ok' : 'warn',
      title: `native/${x.part}: ${x.artifact} ${path ? `built ${where(root, path).short}` : nb!.why}`,
      detail: path ? `${x.what}; ${where(root, path).long}` : x.without,
      fix: nb?.fix,
    }));
  }
  return out;
}

/** Optional extras of a part (native/parts.ts: a part with a slash, PART/SUB). */
const EXTRAS = NATIVE_NAMES.filter((n) => NATIVE[n].part.includes('/')).map((n) => ({
  part: NATIVE[n].part.split('/')[0]!, sub: NATIVE[n].part, name: n, artifact: artifactOf(n), what: NATIVE[n].role, without: NATIVE[n].without ?? '',
}));
