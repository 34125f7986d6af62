// `attach --mode aggregate`: the kernel-side table (live blocks per probed function and call
// site) as text, largest live bytes first.

import { formatAmount } from '../analyses/growth.js';
import type { AggRow } from '../attach/loader.js';

export interface SpecInfo {
  specOf(index: number): { fn: { symbol: string; role: string } } | undefined;
}

/** The rows worth showing: live blocks, largest first. */
export function topAggregate(rows: AggRow[], top: number): AggRow[] {
  return rows.filter((r) => r.spec !== 0xffffffff && r.liveCount > 0).sort((a, b) => b.liveBytes - a.liveBytes || b.liveCount - a.liveCount).slice(0, top);
}

/** `labels` maps `pid:pc` to a function name. */
export function formatAggregate(rows: AggRow[], s: SpecInfo, top: number, when: Date, labels: Map<string, string>): string {
  const out: string[] = [`[${when.toTimeString().slice(0, 8)}] Outstanding by call site (aggregate mode):`];
  const unknown = rows.filter((r) => r.spec === 0xffffffff);
  const sites = topAggregate(rows, top);
  if (sites.length === 0) out.push('  (nothing outstanding)');
  for (const r of sites) {
    const spec = s.specOf(r.spec);
    const site = labels.get(`${r.pid}:${r.site}`) ?? `0x${r.site.toString(16)}`;
    const what = spec?.fn.role.startsWith('pool') ? 'pools' : 'blocks';
    out.push(`  pid ${r.pid}  ${formatAmount(r.liveBytes)} in ${r.liveCount} ${what} (of ${r.totalCount} made)  ${spec?.fn.symbol ?? '?'} from ${site}`);
  }
  for (const u of unknown) out.push(`  pid ${u.pid}: ${u.totalCount} frees of blocks allocated before attach (unknown free)`);
  return `${out.join('\n')}\n`;
}
