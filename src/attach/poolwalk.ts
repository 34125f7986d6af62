// Reads a live pool's size from the traced process' memory (/proc/PID/mem), walking the same
// block lists the BPF side walks at destroy (profile.poolSize), so live pools get sizes without
// a probe per allocation.

import { closeSync, openSync, readSync } from 'node:fs';
import type { PoolList } from './profile.js';

const MAX_NODES = 128;

export class ProcMem {
  private fd: number | undefined;
  private readonly word = Buffer.alloc(8);

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

  /** The 64-bit word at addr, or undefined when it cannot be read. */
  u64(addr: number): number | undefined {
    if (this.fd === undefined || addr <= 0 || addr > 0x7fffffffffff) return undefined;
    try {
      if (readSync(this.fd, this.word, 0, 8, addr) !== 8) return undefined;
    } catch {
      return undefined;
    }
    return this.word.readUInt32LE(0) + this.word.readUInt32LE(4) * 0x100000000;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Bytes held by the pool at `pool` per `lists`, or undefined when its memory cannot be read. */
export function poolBytes(mem: ProcMem, pool: number, lists: PoolList[]): number | undefined {
  let total = 0;
  for (const l of lists) {
    let node = l.first.deref ? mem.u64(pool + l.first.offset) : pool + l.first.offset;
    if (node === undefined) return undefined;
    const first = node;
    for (let i = 0; i < MAX_NODES && node; i++) {
      if (l.end !== undefined) {
        const end = mem.u64(node + l.end);
        if (end === undefined) return undefined;
        if (end > node && end - node < 2 ** 32) total += end - node;
      }
      if (l.mallocPtr !== undefined) {
        const p = mem.u64(node + l.mallocPtr);
        const hdr = p ? mem.u64(p - 8) : 0;
        // glibc chunk header: size with flag bits in the low three
        const sz = hdr ? hdr - (hdr % 8) : 0;
        if (sz >= 16 && sz < 2 ** 32) total += sz - 8;
      }
      const next: number | undefined = mem.u64(node + l.next);
      if (next === undefined || next === node || (l.ring && next === first)) break;
      node = next;
    }
  }
  return total;
}
