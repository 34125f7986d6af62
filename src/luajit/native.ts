// Where the LuaJIT tracer binary lives (built by native/luajit/Makefile into the package's
// native/ or the per-user cache, src/native/locate.ts).
import { findNative, nativePath } from '../native/locate.js';

/** The tracer's path (where it would be when it is not built, for messages). */
export function luajitTracer(): string {
  return nativePath('luajit');
}

export function tracerBuilt(): boolean {
  return findNative('luajit') !== undefined;
}
