// Tracepoints are found through tracefs (their ids under events/). Some machines boot with it
// unmounted; as root we mount it where the kernel expects it, as perf and bpftrace users do.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** The mounted tracefs directory, or undefined. */
export function findTracefs(): string | undefined {
  return CANDIDATES.find((d) => existsSync(`${d}/events`));
}

/** Returns the tracefs directory, mounting it at /sys/kernel/tracing if needed (root only). */
export function ensureTracefs(): { dir?: string; mounted: boolean; error?: string } {
  const dir = findTracefs();
  if (dir) return { dir, mounted: false };
  if (!existsSync(CANDIDATES[0]!)) return { mounted: false, error: 'this kernel has no /sys/kernel/tracing (CONFIG_TRACING off?)' };
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', CANDIDATES[0]!], { stdio: 'pipe' });
  } catch (err) {
    const msg = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { mounted: false, error: `tracefs is not mounted and mounting it failed${msg ? `: ${msg}` : ''}` };
  }
  const now = findTracefs();
  return now ? { dir: now, mounted: true } : { mounted: false, error: 'tracefs mounted but shows no events' };
}
