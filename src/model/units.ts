// How amounts read to a person, the same in every report: 512 B, 3.2 KiB, 41 MiB.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: whole numbers from 100 up, one decimal below. */
export function formatBytes(v: number): string {
  let x = Math.abs(v);
  let u = 0;
  while (x >= 1024 && u < UNITS.length - 1) {
    x /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(x)) : x >= 100 ? x.toFixed(0) : x.toFixed(1);
  return `${v < 0 ? '-' : ''}${s} ${UNITS[u]}`;
}
