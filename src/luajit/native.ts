// Where the LuaJIT tracer binary lives (built by native/luajit/Makefile).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const LUAJIT_TRACER = join(root, 'native', 'luajit', 'build', 'lstrace-luajit');

export function tracerBuilt(): boolean {
  return existsSync(LUAJIT_TRACER);
}
