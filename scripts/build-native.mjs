// Builds the native parts (in-process recorder, BPF loaders, unwinder) with the machine's
// compilers: at `npm install` (the package's install step, also for a packed or global install)
// and in `npm run build`. A part whose build packages (scripts/debian-packages.txt) are missing
// is skipped, and one line says which parts and what to install: the install still succeeds and
// every command that reads files works; `leakscope doctor` says the same.
// LEAKSCOPE_REQUIRE_NATIVE=1: fail (exit 1) unless every part is built (CI, `npm test`).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { installCommand, missing, readList } from './system-packages.mjs';

const root = new URL('..', import.meta.url).pathname;
const nativeDir = join(root, 'native');
const list = readList();
const lacking = missing(['build'], list);
const lackingFor = (part) => lacking.filter((e) => e.parts.includes(part));

const skipped = []; // [part, packages]
let failed = 0;
for (const part of existsSync(nativeDir) ? readdirSync(nativeDir).sort() : []) {
  const dir = join(nativeDir, part);
  if (!existsSync(join(dir, 'Makefile'))) continue;
  const need = lackingFor(part);
  if (need.length) { skipped.push([`native/${part}`, need]); continue; }
  // Optional pieces of a part (native/unwind/kstack): without their packages, the part's
  // `core` target builds the rest.
  const subs = [...new Set(list.flatMap((e) => e.parts).filter((p) => p.startsWith(`${part}/`)))];
  const subsLacking = subs.filter((s) => lackingFor(s).length);
  for (const s of subsLacking) skipped.push([`native/${s}`, lackingFor(s)]);
  try {
    execFileSync('make', ['-s', '-C', dir, ...(subsLacking.length ? ['core'] : [])], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    failed++;
    process.stderr.write(`leakscope: native/${part} did not build (the compiler's messages are above)\n`);
  }
}
if (skipped.length) {
  const pkgs = [...new Set(skipped.flatMap(([, need]) => need.map((e) => e.pkg)))];
  const checkout = existsSync(join(root, 'src'));
  process.stderr.write(`leakscope: not built: ${skipped.map(([p, need]) => `${p} (missing ${need.map((e) => e.pkg).join(', ')})`).join('; ')}. ` +
    `Install them with '${installCommand(pkgs)}', then run '${checkout ? 'npm run build' : 'npm rebuild -g leakscope'}'; ` +
    `until then the commands that read files (analyze, report, export, diff, info) work, and 'leakscope doctor' says what else does not.\n`);
}
if ((failed || skipped.length) && process.env.LEAKSCOPE_REQUIRE_NATIVE) process.exit(1);
