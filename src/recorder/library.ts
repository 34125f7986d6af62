// Where the in-process recorder library (native/recorder, built by `npm run build`) lives.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

/** The package root: two levels above this file, from src/recorder/ (tsx) and dist/recorder/ alike. */
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export const LIBRARY_NAME = 'libleakscope.so';

/** Path of the recorder library, or undefined when it was not built. LEAKSCOPE_LIB, when set, is the only candidate. */
export function findRecorderLibrary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = env.LEAKSCOPE_LIB || join(ROOT, 'native', 'recorder', 'build', LIBRARY_NAME);
  return existsSync(path) ? resolve(path) : undefined;
}
