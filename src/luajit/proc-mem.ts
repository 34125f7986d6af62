// Reads a traced process's memory through /proc/PID/mem (root, or ptrace rights on it).

import { closeSync, openSync, readSync } from 'node:fs';

export class ProcMem {
  private fd = -1;
  private failed = false;

  constructor(readonly pid: number) {}

  /** `len` bytes at `addr`, or undefined when they cannot be read (unmapped, process gone). */
  read(addr: number, len: number): Buffer | undefined {
    if (this.failed || addr <= 0 || len <= 0) return undefined;
    if (this.fd < 0) {
      try {
        this.fd = openSync(`/proc/${this.pid}/mem`, 'r');
      } catch {
        this.failed = true;
        return undefined;
      }
    }
    const buf = Buffer.alloc(len);
    try {
      const n = readSync(this.fd, buf, 0, len, addr);
      return n === len ? buf : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
