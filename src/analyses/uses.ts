// What one use of a pool is, in words ('a connection', 'a request'), from a data file
// (profiles/verdicts/pool-uses.json): a pool cleared or destroyed after each use that grew during
// one is reported as growing "during a connection", the words a user reads.

import { readFileSync } from 'node:fs';
import { packagePath } from '../native/locate.js';

interface UseRule {
  kind: string;
  name: RegExp;
  use: string;
}

const USES_URL = packagePath('profiles', 'verdicts', 'pool-uses.json');
let rules: UseRule[] | undefined;

function load(): UseRule[] {
  const data = JSON.parse(readFileSync(USES_URL, 'utf8')) as { uses: { kind: string; name: string; use: string }[] };
  return data.uses.map((u) => ({
    kind: u.kind,
    name: new RegExp(`^${u.name.replace(/[.+?()[\]{}|\\^$]/g, '\\$&').replace(/\*/g, '.*')}$`),
    use: u.use,
  }));
}

/** The words for one use of a pool of this kind and class name (tag or 'created at SITE'). */
export function poolUse(kind: string, name: string): string | undefined {
  for (const r of (rules ??= load())) if (r.kind === kind && r.name.test(name)) return r.use;
  return undefined;
}
