// Where the in-process recorder library (native/recorder, built by `npm run build`) lives.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { NATIVE } from '../native.js';

/** Path of the recorder library, or undefined when it was not built. LEAKSCOPE_LIB, when set, is the only candidate. */
export function findRecorderLibrary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = env.LEAKSCOPE_LIB || NATIVE.recorder.path;
  return existsSync(path) ? resolve(path) : undefined;
}
