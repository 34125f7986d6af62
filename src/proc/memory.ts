// A live process's memory, read with pread(2) on /proc/PID/mem: the kernel's access_process_vm,
// as process_vm_readv uses, without a native helper (root, or ptrace rights on the process).
// Counts what it reads, so a walk can report its cost.

import { closeSync, openSync, readSync } from 'node:fs';

/** Above this, no user-space address (x86-64's 47-bit user half). */
const MAX_ADDR = 0x7fffffffffff;

export class ProcMem {
  private fd: number | undefined;
  /** Opening was tried and failed: the process is gone or not ours to read. */
  private failed = false;
  private readonly word = Buffer.alloc(8);
  reads = 0;
  bytes = 0;

  constructor(readonly pid: number) {}

  /** The memory can be read (opens it on first use). */
  get ok(): boolean {
    return this.open() !== undefined;
  }

  private open(): number | undefined {
    if (this.fd === undefined && !this.failed) {
      try {
        this.fd = openSync(`/proc/${this.pid}/mem`, 'r');
      } catch {
        this.failed = true;
      }
    }
    return this.fd;
  }

  /** `len` bytes at addr into buf (from its start), or false when they cannot all be read. */
  readInto(addr: number, buf: Buffer, len = buf.length): boolean {
    if (addr <= 0 || len <= 0 || addr + len > MAX_ADDR || len > buf.length) return false;
    const fd = this.open();
    if (fd === undefined) return false;
    this.reads++;
    try {
      const n = readSync(fd, buf, 0, len, addr);
      this.bytes += n;
      return n === len;
    } catch {
      return false;
    }
  }

  /** `len` bytes at addr in a new buffer, or undefined when they cannot be read (unmapped, process gone). */
  read(addr: number, len: number): Buffer | undefined {
    if (len <= 0) return undefined;
    const buf = Buffer.alloc(len);
    return this.readInto(addr, buf) ? buf : undefined;
  }

  /** The 64-bit word at addr as a user-space pointer (u64At), or undefined when it cannot be read. */
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
