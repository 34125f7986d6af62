// Parses the lines the kernel-side bpftrace program prints (script.ts) into typed records.
// Lines from bpftrace itself ("Attaching 12 probes...", warnings) are not records.

export type KernelRecord =
  | { type: 'ready' }
  | { type: 'exec'; ns: bigint; pid: number }
  | { type: 'fork'; ns: bigint; pid: number; child: number }
  | { type: 'exit'; ns: bigint; pid: number; status: number }
  | { type: 'mmap'; ns: bigint; pid: number; tid: number; addr: number; size: number; prot: number; flags: number }
  | { type: 'munmap'; ns: bigint; pid: number; addr: number; size: number }
  | { type: 'mremap'; ns: bigint; pid: number; tid: number; oldAddr: number; oldSize: number; addr: number; size: number }
  | { type: 'brk'; ns: bigint; pid: number; addr: number }
  | { type: 'shm'; ns: bigint; pid: number; op: 'get' | 'attach' | 'detach' | 'remove'; id: number; addr: number; size: number }
  | { type: 'fault-interval'; ns: bigint }
  /** Running total of a process's user page faults since tracing began. */
  | { type: 'faults'; pid: number; count: number }
  | { type: 'oom'; ns: bigint; pid: number; rssKb: number }
  | { type: 'reclaim'; ns: bigint; pid: number; stallNs: number; reclaimed: number; memcg: boolean }
  | { type: 'lost'; count: number };

const int = (s: string | undefined) => Number.parseInt(s ?? '', 10);
const ns = (s: string | undefined) => BigInt(s ?? '0');

/** One line (without its newline) → a record, or undefined for anything else. */
export function parseKernelLine(line: string): KernelRecord | undefined {
  const w = line.trim().split(' ');
  const n = (i: number) => int(w[i]);
  const ok = (count: number) => w.length === count && w.slice(1).every((x) => /^-?\d+$/.test(x));
  switch (w[0]) {
    case 'READY':
      return w.length === 1 ? { type: 'ready' } : undefined;
    case 'X':
      return ok(3) ? { type: 'exec', ns: ns(w[1]), pid: n(2) } : undefined;
    case 'F':
      return ok(4) ? { type: 'fork', ns: ns(w[1]), pid: n(2), child: n(3) } : undefined;
    case 'E':
      return ok(4) ? { type: 'exit', ns: ns(w[1]), pid: n(2), status: n(3) } : undefined;
    case 'M':
      return ok(8) ? { type: 'mmap', ns: ns(w[1]), pid: n(2), tid: n(3), addr: n(4), size: n(5), prot: n(6), flags: n(7) } : undefined;
    case 'U':
      return ok(5) ? { type: 'munmap', ns: ns(w[1]), pid: n(2), addr: n(3), size: n(4) } : undefined;
    case 'R':
      return ok(8) ? { type: 'mremap', ns: ns(w[1]), pid: n(2), tid: n(3), oldAddr: n(4), oldSize: n(5), addr: n(6), size: n(7) } : undefined;
    case 'B':
      return ok(4) ? { type: 'brk', ns: ns(w[1]), pid: n(2), addr: n(3) } : undefined;
    case 'SG':
      return ok(5) ? { type: 'shm', op: 'get', ns: ns(w[1]), pid: n(2), id: n(3), addr: 0, size: n(4) } : undefined;
    case 'SA':
      return ok(5) ? { type: 'shm', op: 'attach', ns: ns(w[1]), pid: n(2), id: n(3), addr: n(4), size: 0 } : undefined;
    case 'SD':
      return ok(4) ? { type: 'shm', op: 'detach', ns: ns(w[1]), pid: n(2), id: 0, addr: n(3), size: 0 } : undefined;
    case 'SR':
      return ok(4) ? { type: 'shm', op: 'remove', ns: ns(w[1]), pid: n(2), id: n(3), addr: 0, size: 0 } : undefined;
    case 'I':
      return ok(2) ? { type: 'fault-interval', ns: ns(w[1]) } : undefined;
    case 'O':
      return ok(4) ? { type: 'oom', ns: ns(w[1]), pid: n(2), rssKb: n(3) } : undefined;
    case 'D':
      return ok(5) ? { type: 'reclaim', ns: ns(w[1]), pid: n(2), stallNs: n(3), reclaimed: n(4), memcg: false } : undefined;
    case 'C':
      return ok(5) ? { type: 'reclaim', ns: ns(w[1]), pid: n(2), stallNs: n(3), reclaimed: n(4), memcg: true } : undefined;
  }
  const pf = /^@pf\[(\d+)\]: (\d+)$/.exec(line.trim());
  if (pf) return { type: 'faults', pid: int(pf[1]), count: int(pf[2]) };
  const lost = /Lost (\d+) events/.exec(line);
  if (lost) return { type: 'lost', count: int(lost[1]) };
  return undefined;
}

/** Decodes a wait status (the kernel's exit_code) into a shell-style exit code. */
export function exitCodeOf(status: number): number {
  const sig = status & 0x7f;
  return sig === 0 ? (status >> 8) & 0xff : 128 + sig;
}
