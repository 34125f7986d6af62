// `leakscope setup` — builds every native part that is not built (all with --rebuild), then
// says per part where it is, or what it lacks and the command that fixes it. Exit 0 when every
// part is built, 1 when one is not. Registered by commands/setup.ts.
import { missingPackages } from '../../native/packages.js';
import { buildNative, lackingHint } from '../../native/ensure.js';
import { findNative, PACKAGE_ROOT } from '../../native/locate.js';
import { NATIVE, NATIVE_NAMES } from '../../native/parts.js';

export interface SetupOpts {
  rebuild?: boolean;
}

export function setupCommand(o: SetupOpts): void {
  const todo = o.rebuild ? NATIVE_NAMES : NATIVE_NAMES.filter((n) => !findNative(n));
  // The build script itself says in one line which parts lack which packages.
  if (todo.length) buildNative(todo, { reason: o.rebuild ? 'setup --rebuild' : 'setup', force: o.rebuild });
  const miss = missingPackages(PACKAGE_ROOT);
  let ok = true;
  for (const n of NATIVE_NAMES) {
    const path = findNative(n);
    if (!path) ok = false;
    const why = path ?? `not built: ${lackingHint(NATIVE[n].part, PACKAGE_ROOT, miss) ?? 'its build failed (above)'}`;
    process.stdout.write(`${NATIVE[n].what}: ${why}\n`);
  }
  process.exitCode = ok ? 0 : 1;
}
