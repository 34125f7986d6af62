// Doctor: whether `attach` can find the pools of a target that were alive before the trace (the
// profile's `discover` block): the allocator's code still shows the profile's layout, the roots'
// symbols are there, and, for a running process, a read-only walk of its pools from the roots.

import { existsSync } from 'node:fs';
import { layoutChecks, PoolDiscoverer } from '../attach/pool-discovery.js';
import { poolBytes } from '../attach/poolwalk.js';
import { ProcMem } from '../proc/memory.js';
import { runningFile } from '../proc/processes.js';
import type { AllocatorProfile } from '../attach/profile.js';
import { ElfFile } from '../symbols/elf.js';
import { formatBytes } from '../model/units.js';
import { check, type Check } from './check.js';

export interface DiscoveryTarget {
  pid?: number;
  exe: string;
  /** The target's libraries (mapped, or what the executable needs). */
  libs: { name: string; path: string }[];
}

function definedIn(path: string, symbol: string): boolean {
  let elf: ElfFile | undefined;
  try {
    elf = ElfFile.open(path);
    return elf.symbolAddress(symbol) !== undefined;
  } catch {
    return false;
  } finally {
    elf?.close();
  }
}

export function discoveryChecks(p: AllocatorProfile, t: DiscoveryTarget): Check[] {
  const d = p.discover;
  const id = `discover-${p.name}`;
  if (!d) {
    return [check({ id, group: 'target', status: 'info', title: `pools alive before attach (${p.name}): not looked for`, detail: `the ${p.name} profile describes no pool layout: only what is allocated after attach is seen` })];
  }
  const pathOf = (w: string) => (w === 'exe' ? t.exe : t.libs.find((l) => l.name.startsWith(w))?.path);
  const layout = layoutChecks(d, pathOf);
  const bad = layout.filter((c) => !c.ok);
  if (bad.length) {
    return [check({
      id, group: 'target', status: 'warn', title: `pools alive before attach (${p.name}): not looked for, the layout differs`,
      detail: bad.map((b) => `${b.says}: ${b.why}`).join('; '),
      fix: 'a profile for this allocator version (profiles/allocators/*.json, "discover")',
    })];
  }
  const proven = layout.length ? ` Layout confirmed by the allocator's code: ${layout.map((c) => c.says).join('; ')}.` : '';
  const roots = (d.roots ?? []).filter((r) => {
    const path = pathOf(r.in);
    return path !== undefined && existsSync(path) && definedIn(t.pid !== undefined && r.in === 'exe' ? runningFile(t.pid) : path, r.symbol);
  });
  const via = d.tree ? 'walked through their parent/child/sibling links from any pool a probe names' : 'pools a probe names are checked one by one';
  const rootText = roots.length ? `from ${roots.map((r) => `${r.name} (${r.symbol})`).join(', ')} at attach, and ${via}` : `no root symbol here (${(d.roots ?? []).map((r) => r.symbol).join(', ') || 'none in the profile'}): ${via}`;
  if (t.pid === undefined) {
    return [check({ id, group: 'target', status: 'ok', title: `pools alive before attach (${p.name}): found ${roots.length ? 'at attach' : 'when a probe names one'}`, detail: `${rootText}; their sizes are read from their block lists.${proven}` })];
  }
  const mem = new ProcMem(t.pid);
  if (!mem.ok) {
    return [check({ id, group: 'target', status: 'warn', title: `pools alive before attach (${p.name}): process ${t.pid}'s memory cannot be read`, detail: 'attach reads /proc/PID/mem to find and size them', fix: 'run as root' })];
  }
  try {
    const walk = new PoolDiscoverer(mem, d);
    const found = walk.fromRoots({ known: () => false, dead: () => false });
    let bytes = 0;
    for (const f of found) bytes += (p.poolSize ? poolBytes(mem, f.pool, p.poolSize.lists) : 0) ?? 0;
    const tags = [...new Set(found.map((f) => f.tag).filter(Boolean))].slice(0, 8);
    return [check({
      id, group: 'target', status: found.length || !roots.length ? 'ok' : 'warn',
      title: `pools alive before attach (${p.name}): ${found.length} found in process ${t.pid} now${found.length ? `, ${formatBytes(bytes)}` : ''}`,
      detail: `${rootText}.${tags.length ? ` Tags: ${tags.join(', ')}.` : ''} The walk read ${walk.cost.bytes} bytes in ${walk.cost.reads} reads (${walk.cost.ms.toFixed(1)} ms)${walk.cost.rejected ? `; ${walk.cost.rejected} links did not check out and were left` : ''}.${proven}`,
    })];
  } finally {
    mem.close();
  }
}
