// Builds the native parts a command needs on its first use. An install that ran no install step
// (npm 11 runs a dependency's only with --allow-scripts) has none, so `run`, `attach` and
// `kernel` build what they need once, with scripts/build-native.mjs, into the package's native/
// when writable, else into the per-user cache (locate.ts). The script locks, builds in a private
// copy and renames each file into place, so concurrent first uses wait for one build and never
// see half a file. When the machine lacks a build package, a needed part fails in one line
// naming the packages and the one command that installs them; an optional part is left out.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { missingPackages } from './packages.js';
import { buildCommand, buildTarget, cacheNativeDir, findNative, PACKAGE_ROOT } from './locate.js';
import { NATIVE, type NativeName } from './parts.js';

/** "this machine lacks X: apt-get install -y X, then leakscope setup" for a part whose packages
 *  are missing, else undefined. `part` as in the package list (recorder, bpf, unwind/kstack, ...). */
export function lackingHint(part: string, root = PACKAGE_ROOT, miss = missingPackages(root)): string | undefined {
  const lack = typeof miss === 'string' ? [] : miss.filter((m) => m.parts.includes(part)).map((m) => m.pkg);
  return lack.length ? `this machine lacks ${lack.join(' ')}: apt-get install -y ${lack.join(' ')}, then ${buildCommand(root)}` : undefined;
}

export interface BuildResult {
  /** Where it built into; undefined when nothing was built. */
  dir?: string;
  status: number;
}

/** Runs the build script for `names` into the build target; its progress goes to stderr. */
export function buildNative(names: NativeName[], opts: { root?: string; reason: string; force?: boolean }): BuildResult {
  const root = opts.root ?? PACKAGE_ROOT;
  const dir = buildTarget(root);
  if (!dir) {
    throw new UserError(`cannot build ${names.map((n) => NATIVE[n].what).join(', ')}: neither ${join(root, 'native')} nor the cache ` +
      `(${cacheNativeDir(root) ?? 'no home directory'}) is writable; run 'sudo leakscope setup' once`);
  }
  process.stderr.write(`leakscope: building the native parts (${opts.reason}: ${[...new Set(names.map((n) => `native/${NATIVE[n].part.split('/')[0]}`))].join(', ')}) into ${dir} …\n`);
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs'), '--into', dir, '--need', names.map((n) => NATIVE[n].file).join(','), ...(opts.force ? ['--force'] : [])], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { dir, status: r.status ?? 1 };
}

/**
 * Makes sure the native files a command needs exist, building the missing ones (first use).
 * A `required` one that cannot be had is a UserError naming what is missing and the fix; an
 * `optional` one is built when it can be and otherwise left out (its command works without it).
 */
export function ensureNative(required: NativeName[], optional: NativeName[] = [], root = PACKAGE_ROOT): void {
  const absent = (ns: NativeName[]) => ns.filter((n) => !findNative(n, root));
  const req = absent(required);
  const opt = absent(optional).filter((n) => !req.includes(n));
  if (!req.length && !opt.length) return;
  const miss = missingPackages(root);
  for (const n of req) {
    const hint = lackingHint(NATIVE[n].part, root, miss);
    if (hint) throw new UserError(`${NATIVE[n].what} is not built: ${hint}`);
  }
  const buildable = [...req, ...opt.filter((n) => !lackingHint(NATIVE[n].part, root, miss))];
  if (!buildable.length) return;
  let built: BuildResult;
  try {
    built = buildNative(buildable, { root, reason: 'first use' });
  } catch (e) {
    if (req.length) throw e;
    return; // optional parts only: the command goes on without them
  }
  const still = absent(req);
  if (still.length) {
    throw new UserError(`${still.map((n) => NATIVE[n].what).join(' and ')} did not build (why is above, the compiler's messages in ${join(built.dir!, 'build.log')}); ` +
      `'${buildCommand(root)}' tries again`);
  }
}
