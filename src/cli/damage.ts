// Damaged input (cut short, corrupt chunks, binary junk in a text log): the readable part is still
// reported, and the command says so once on stderr and exits 1 so that scripts notice. Other
// warnings (skipped foreign log lines, missing options in the server's config) are notes about
// the content and stay in the report only.

const DAMAGE = /truncated|cut short|damaged|ends early|binary data/i;

/** The first warning that says an input is damaged, if any. */
export function damageOf(warnings: readonly string[]): string | undefined {
  return warnings.find((w) => DAMAGE.test(w));
}

/** One stderr line and exit status 1 when an input was damaged. */
export function warnIfDamaged(warnings: readonly string[], what = 'the report covers the readable part'): void {
  const w = damageOf(warnings);
  if (w === undefined) return;
  const more = warnings.filter((x) => DAMAGE.test(x)).length - 1;
  process.stderr.write(`leakscope: warning: ${w.replace(/\s+/g, ' ')}${more > 0 ? ` (and ${more} more)` : ''}; ${what}\n`);
  process.exitCode = 1;
}
