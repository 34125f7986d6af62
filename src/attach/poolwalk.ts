// Reads a live pool's size from the traced process' memory (/proc/PID/mem), walking the same
// block lists the BPF side walks at destroy (profile.poolSize), so live pools get sizes without
// a probe per allocation.

import { closeSync, openSync, readSync } from 'node:fs';
import type { PoolList } from './profile.js';

/** Nodes visited per list. The BPF side stops at 128 (the verifier's bound); here a pool that
 *  grows for hours (APR's pchild: a node per few requests) must still be sized whole. */
export const MAX_NODES = 1 << 16;
const MAX_ADDR = 0x7fffffffffff;

/**
 * The traced process's memory, read with pread(2) on /proc/PID/mem: the kernel's
 * access_process_vm, as process_vm_readv uses, without a native helper. Counts what it reads
 * (the discovery walk's cost is reported from these).
 */
export class ProcMem {
  private fd: number | undefined;
  private readonly word = Buffer.alloc(8);
  reads = 0;
  bytes = 0;

  constructor(readonly pid: number) {
    try {
      this.fd = openSync(`/proc/${pid}/mem`, 'r');
    } catch {
      this.fd = undefined;
    }
  }

  get ok(): boolean {
    return this.fd !== undefined;
  }

  /** `len` bytes at addr into buf (from its start), or false when they cannot all be read. */
  readInto(addr: number, buf: Buffer, len = buf.length): boolean {
    if (this.fd === undefined || addr <= 0 || addr + len > MAX_ADDR || len > buf.length) return false;
    this.reads++;
    try {
      const n = readSync(this.fd, buf, 0, len, addr);
      this.bytes += n;
      return n === len;
    } catch {
      return false;
    }
  }

  /** The 64-bit word at addr, or undefined when it cannot be read. */
  u64(addr: number): number | undefined {
    if (!this.readInto(addr, this.word, 8)) return undefined;
    return u64At(this.word, 0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A user-space pointer (below 2^47) read from buf; a larger word reads as 0 (no pointer). */
export function u64At(buf: Buffer, off: number): number {
  const hi = buf.readUInt32LE(off + 4);
  return hi >= 0x8000 ? 0 : buf.readUInt32LE(off) + hi * 0x100000000;
}

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
