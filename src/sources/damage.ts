// A damage warning is a warning of its own kind: the input is damaged (cut short, corrupt, binary
// junk) and only its readable part was used. The producer says so where it writes the message,
// so that commands decide by kind, never by the wording.

import type { SourceStats } from './source.js';

/** Adds `msg` to the warnings and marks it as damage; `first` puts it ahead of the others. */
export function addDamage(stats: SourceStats, msg: string, first = false): void {
  const damaged = (stats.damaged ??= []);
  if (first) {
    stats.warnings.unshift(msg);
    damaged.unshift(msg);
  } else {
    stats.warnings.push(msg);
    damaged.push(msg);
  }
}
