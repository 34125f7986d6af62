// Builds the native parts (in-process recorder, BPF loader) with the machine's compilers.
// Each native/<part>/Makefile is built; a part whose toolchain is missing is reported and
// skipped, so `npm ci` still gives a working CLI, and `leakscope doctor` says what is missing.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const nativeDir = join(root, 'native');
let failed = 0;
for (const part of existsSync(nativeDir) ? readdirSync(nativeDir).sort() : []) {
  const dir = join(nativeDir, part);
  if (!existsSync(join(dir, 'Makefile'))) continue;
  try {
    execFileSync('make', ['-s', '-C', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    failed++;
    process.stderr.write(`leakscope build: native/${part} did not build (see above); run 'leakscope doctor' after installing its toolchain\n`);
  }
}
if (failed && process.env.LEAKSCOPE_REQUIRE_NATIVE) process.exit(1);
