// Damaged input (cut short, corrupt chunks, binary junk in a text log): the readable part is still
// reported, and the command says so once on stderr and exits 1 so that scripts notice. Other
// warnings (skipped foreign log lines, missing options in the server's config) are notes about
// the content and stay in the report only. Which warnings are damage is said where they are
// made (SourceStats.damaged and what carries it), never read from their wording.

import { terminalSafe } from '../reports/terminal.js';

/** One stderr line and exit status 1 when an input was damaged (`damaged`: its damage warnings). */
export function warnIfDamaged(damaged: readonly string[], what = 'the report covers the readable part'): void {
  const w = damaged[0];
  if (w === undefined) return;
  const more = damaged.length - 1;
  process.stderr.write(`leakscope: warning: ${terminalSafe(w.replace(/\s+/g, ' '))}${more > 0 ? ` (and ${more} more)` : ''}; ${what}\n`);
  process.exitCode = 1;
}
