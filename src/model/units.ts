// How amounts read to a person, the same in every report: 512 B, 3.2 KiB, 41 MiB.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** Bytes in binary units: whole numbers from 100 up, one decimal below. */
export function formatBytes(v: number): string {
  if (!Number.isFinite(v)) return '?';
  let x = Math.abs(v);
  let u = 0;
  while (x >= 1024 && u < UNITS.length - 1) {
    x /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(x)) : x >= 100 ? x.toFixed(0) : x.toFixed(1);
  return `${v < 0 ? '-' : ''}${s} ${UNITS[u]}`;
}

/** A duration as users type it on a command line: 30, 30s, 500ms, 5m, 1h (a bare number is
 *  seconds). Milliseconds, or undefined when it is not one or not positive. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(m[1]) * unit;
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
