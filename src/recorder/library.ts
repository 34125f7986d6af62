// Where the in-process recorder library (native/recorder) lives: the package's native/ or the
// per-user cache (src/native/locate.ts).

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { findNative } from '../native/locate.js';

export const LIBRARY_NAME = 'libleakscope.so';

/** Path of the recorder library, or undefined when it was not built. LEAKSCOPE_LIB, when set, is the only candidate. */
export function findRecorderLibrary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.LEAKSCOPE_LIB) return existsSync(env.LEAKSCOPE_LIB) ? resolve(env.LEAKSCOPE_LIB) : undefined;
  return findNative('recorder', undefined, env);
}
