// Builds the native parts (in-process recorder, BPF loaders, unwinder) with the machine's
// compilers. A part whose build packages (scripts/debian-packages.txt) are missing is skipped,
// and one line says which parts and what to install; every command that reads files works
// without them, and `leakscope doctor` says the same.
//
//   node scripts/build-native.mjs
//       in place (native/PART/build): `npm run build`, and the package's install step when npm
//       runs it (npm 11 runs a dependency's install step only with --allow-scripts).
//   node scripts/build-native.mjs --into DIR --need PART/build/FILE,...
//       what an installed leakscope runs on first need (src/native/ensure.ts) and in
//       `leakscope setup`: under a lock (flock on DIR/.build.lock, so a second leakscope waits
//       and then finds the parts built), builds the parts of the needed files that are missing
//       in a private copy of the sources (DIR/.build-XXXXXX), then renames each built file into
//       DIR/PART/build/: a reader sees a whole file or none. The compilers' messages go to
//       DIR/build.log; stderr gets one line per outcome. --force builds them even when built
//       (`leakscope setup --rebuild`).
//
// LEAKSCOPE_REQUIRE_NATIVE=1: fail (exit 1) unless every part is built (CI, `npm test`).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installCommand, missing, readList } from './system-packages.mjs';

const root = new URL('..', import.meta.url).pathname;
const sourceDir = join(root, 'native');
const checkout = existsSync(join(root, 'src'));
const buildCommand = checkout ? 'npm run build' : 'leakscope setup';
const say = (s) => process.stderr.write(`leakscope: ${s}\n`);

const args = process.argv.slice(2);
const argOf = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const into = argOf('--into');
const need = (argOf('--need') ?? '').split(',').filter(Boolean);
const force = args.includes('--force'); // build the needed files' parts even when built

if (into && !process.env.LEAKSCOPE_NATIVE_LOCKED) process.exit(underLock(into));

const list = readList();
const lacking = missing(['build'], list);
const lackingFor = (part) => lacking.filter((e) => e.parts.includes(part));

// The parts to build: all, in place; else those of the needed files still missing.
let nativeDir = sourceDir;
let parts = existsSync(sourceDir) ? readdirSync(sourceDir).filter((p) => existsSync(join(sourceDir, p, 'Makefile'))).sort() : [];
let log;
if (into) {
  const still = need.filter((f) => force || !existsSync(join(into, f)));
  if (need.length && !still.length) process.exit(0); // built meanwhile, by whoever held the lock
  const wanted = new Set((need.length ? still : parts).map((f) => f.split('/')[0]));
  parts = parts.filter((p) => wanted.has(p));
  // Under the lock, a private copy left by a build that was killed is garbage.
  for (const d of readdirSync(into)) if (d.startsWith('.build-')) rmSync(join(into, d), { recursive: true, force: true });
  nativeDir = mkdtempSync(join(into, '.build-'));
  // An error of this script (a full disk, a permission) is one line, and leaves no copy behind.
  const copy = nativeDir;
  process.on('uncaughtException', (e) => {
    rmSync(copy, { recursive: true, force: true });
    say(`the native build into ${into} failed: ${e.message}`);
    process.exit(1);
  });
  // The sources only (DIR may be the package's native/ itself: not its builds, locks or copies).
  for (const e of readdirSync(sourceDir)) {
    if (e.startsWith('.') || e === 'build.log') continue;
    cpSync(join(sourceDir, e), join(nativeDir, e), { recursive: true, filter: (src) => !/\/build$/.test(src) || !statSync(src).isDirectory() });
  }
  log = join(into, 'build.log');
  writeFileSync(log, `leakscope native build, ${new Date().toISOString()}: ${parts.join(' ')}\n`);
}

const skipped = []; // [part, packages]
const built = [];
let failed = 0;
const t0 = Date.now();
const jobs = []; // [part, make arguments]
for (const part of parts) {
  const lack = lackingFor(part);
  if (lack.length) { skipped.push([`native/${part}`, lack]); continue; }
  // Optional pieces of a part (native/unwind/kstack): without their packages, the part's
  // `core` target builds the rest.
  const subs = [...new Set(list.flatMap((e) => e.parts).filter((p) => p.startsWith(`${part}/`)))];
  const subsLacking = subs.filter((s) => lackingFor(s).length);
  for (const s of subsLacking) skipped.push([`native/${s}`, lackingFor(s)]);
  jobs.push([part, ['-s', '-C', join(nativeDir, part), ...(subsLacking.length ? ['core'] : [])]]);
}
if (!into) {
  // In place, one part after the other: the compilers' messages as they come, in order.
  for (const [part, makeArgs] of jobs) {
    try {
      execFileSync('make', makeArgs, { stdio: ['ignore', 'inherit', 'inherit'] });
      built.push(part);
    } catch {
      failed++;
      say(`native/${part} did not build (the compiler's messages are above)`);
    }
  }
} else {
  // Into DIR: the parts at once (they do not depend on one another; a first use waits for them),
  // their messages into the log.
  const width = Math.max(1, availableParallelism());
  const queue = [...jobs];
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await makeInto(...job);
  }));
}

/** Builds a part in the private copy, then renames its built files into DIR/PART/build. */
async function makeInto(part, makeArgs) {
  const r = await new Promise((resolve) => {
    const child = spawn('make', makeArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', (e) => resolve({ status: 127, out, err: `${err}${e.message}\n` }));
    child.on('close', (status) => resolve({ status, out, err }));
  });
  appendFileSync(log, `\n$ make ${makeArgs.join(' ')}\n${r.out}${r.err}`);
  if (r.status !== 0) {
    failed++;
    const lines = r.err.trim().split('\n');
    const why = lines.find((l) => /error/i.test(l)) ?? lines.pop() ?? `make exit status ${r.status}`;
    say(`native/${part} did not build: ${why.trim()} (all the compiler said is in ${log}); '${buildCommand}' tries again`);
    return;
  }
  // Into place, one file at a time: a rename is atomic, so a reader never sees half a file.
  const from = join(nativeDir, part, 'build');
  const to = join(into, part, 'build');
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) {
    if (/\.(o|h|a)$/.test(f) || !statSync(join(from, f)).isFile()) continue;
    renameSync(join(from, f), join(to, f));
  }
  built.push(part);
}
if (into) {
  rmSync(nativeDir, { recursive: true, force: true });
  if (built.length) say(`built ${built.sort().map((p) => `native/${p}`).join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s, into ${into}`);
}
if (skipped.length) {
  const pkgs = [...new Set(skipped.flatMap(([, lack]) => lack.map((e) => e.pkg)))];
  say(`not built: ${skipped.map(([p, lack]) => `${p} (missing ${lack.map((e) => e.pkg).join(', ')})`).join('; ')}. ` +
    `Install them with '${installCommand(pkgs)}', then run '${buildCommand}'; ` +
    `until then the commands that read files (analyze, report, export, diff, info) work, and 'leakscope doctor' says what else does not.`);
}
if (into && (failed || need.some((f) => !existsSync(join(into, f))))) process.exit(1);
if ((failed || skipped.length) && process.env.LEAKSCOPE_REQUIRE_NATIVE) process.exit(1);

/** Runs this script again under flock(1) on DIR/.build.lock; a second caller says it waits. */
function underLock(dir) {
  try { mkdirSync(dir, { recursive: true }); } catch (e) {
    say(`cannot build the native parts into ${dir}: ${e.code === 'EACCES' || e.code === 'EROFS' ? 'not writable' : e.message}`);
    return 1;
  }
  const lock = join(dir, '.build.lock');
  const env = { ...process.env, LEAKSCOPE_NATIVE_LOCKED: '1' };
  const cmd = [process.execPath, new URL(import.meta.url).pathname, ...args];
  const opts = { env, stdio: ['ignore', 'inherit', 'inherit'] };
  // -E 75: "someone else holds it", told apart from the build's own exit status.
  let r = spawnSync('flock', ['-n', '-E', '75', lock, ...cmd], opts);
  if (r.status === 75) {
    say('another leakscope is building the native parts; waiting for it …');
    r = spawnSync('flock', ['-w', '1800', '-E', '75', lock, ...cmd], opts);
    if (r.status === 75) { say(`gave up waiting for the lock ${lock} after 30 minutes`); return 1; }
  }
  if (r.error) {
    say(r.error.code === 'ENOENT' ? `cannot lock ${lock}: flock is missing: ${installCommand(['util-linux'])}` : `cannot run flock: ${r.error.message}`);
    return 1;
  }
  return r.status ?? 1;
}
