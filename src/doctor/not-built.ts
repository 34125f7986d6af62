// The one line a command prints when the native part it needs is not built: which packages the
// machine lacks for it (scripts/debian-packages.txt) and the commands that fix it. The build's
// own message at install may not have been seen (npm hides install-script output).
import { fileURLToPath } from 'node:url';
import { missingPackages, rebuildCommand } from './packages.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** "missing X Y: apt-get install -y X Y, then npm rebuild -g leakscope" or the rebuild alone. `part` as in the list: recorder, bpf, luajit, unwind, unwind/kstack. */
export function notBuiltHint(part: string): string {
  const miss = missingPackages(root);
  const lack = typeof miss === 'string' ? [] : miss.filter((m) => m.parts.includes(part)).map((m) => m.pkg);
  return lack.length
    ? `this machine lacks ${lack.join(' ')}: apt-get install -y ${lack.join(' ')}, then ${rebuildCommand(root)}`
    : `${rebuildCommand(root)} builds it (and shows why it failed)`;
}
