// Temporary directories for tests, removed when the test file's tests pass (kept when one fails,
// to look at). Each test file runs in its own process: its exit code says whether all passed.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dirs = new Set<string>();
process.on('exit', (code) => {
  if (code !== 0) {
    const kept = [...dirs].filter((d) => existsSync(d)); // a test may have removed its own
    if (kept.length) process.stderr.write(`kept for the failed test(s): ${kept.join(' ')}\n`);
    return;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A new directory under the temporary directory, named PREFIX-XXXXXX. */
export function testDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
  dirs.add(dir);
  return dir;
}
