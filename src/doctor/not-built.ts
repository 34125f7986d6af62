// The one line a command prints when the native part it needs is not built: which packages the
// machine lacks for it (scripts/debian-packages.txt) and the commands that fix it. The build's
// own message at install may not have been seen (npm hides install-script output).
import { lackingHint } from '../native/ensure.js';
import { buildCommand } from '../native/locate.js';

/** "this machine lacks X Y: apt-get install -y X Y, then leakscope setup" or the build command alone. `part` as in the list: recorder, bpf, luajit, unwind, unwind/kstack. */
export function notBuiltHint(part: string): string {
  return lackingHint(part) ?? `'${buildCommand()}' builds it (and shows why it failed)`;
}
