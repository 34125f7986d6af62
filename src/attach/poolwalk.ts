// Reads a live pool's size from the traced process' memory (/proc/PID/mem), walking the same
// block lists the BPF side walks at destroy (profile.poolSize), so live pools get sizes without
// a probe per allocation.

import type { PoolList } from './profile.js';
import { u64At } from '../proc/memory.js';
import type { ProcMem } from '../proc/memory.js';

/** Nodes visited per list. The BPF side stops at 128 (the verifier's bound); here a pool that
 *  grows for hours (APR's pchild: a node per few requests) must still be sized whole. */
export const MAX_NODES = 1 << 16;

const nodeBuf = Buffer.alloc(4096 + 8);

/** Bytes held by the pool at `pool` per `lists`, or undefined when its memory cannot be read. */
export function poolBytes(mem: ProcMem, pool: number, lists: PoolList[]): number | undefined {
  let total = 0;
  for (const l of lists) {
    let node = l.first.deref ? mem.u64(pool + l.first.offset) : pool + l.first.offset;
    if (node === undefined) return undefined;
    const first = node;
    // one read per node, of the words the list needs
    const span = Math.max(l.next, l.end ?? 0, l.mallocPtr ?? 0) + 8;
    for (let i = 0; i < MAX_NODES && node; i++) {
      if (!mem.readInto(node, nodeBuf, span)) return undefined;
      if (l.end !== undefined) {
        const end = u64At(nodeBuf, l.end);
        if (end > node && end - node < 2 ** 32) total += end - node;
      }
      if (l.mallocPtr !== undefined) {
        const p = u64At(nodeBuf, l.mallocPtr);
        const hdr = p ? mem.u64(p - 8) : 0;
        // glibc chunk header: size with flag bits in the low three
        const sz = hdr ? hdr - (hdr % 8) : 0;
        if (sz >= 16 && sz < 2 ** 32) total += sz - 8;
      }
      const next: number = u64At(nodeBuf, l.next);
      if (next === node || (l.ring && next === first)) break;
      node = next;
    }
  }
  return total;
}
