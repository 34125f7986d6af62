// Runs the BPF loader (native/bpf/build/leakscope-bpf) and speaks its pipe protocol: TAB
// separated commands in, binary records out (see the comment at the top of loader.c).

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { notBuiltHint } from '../doctor/not-built.js';
import { findNative, nativePath } from '../native/locate.js';
import { ensureTracefs } from '../kernel/tracefs.js';

const REC_CALL = 1;
const REC_STATUS = 2;
const REC_LOST = 3;
const REC_AGG = 4;
const REC_NOTIFY = 5;
const REC_STACK = 6;
const REC_STACKS_RESET = 7;
/** Byte offsets of the fields of the loader's records as its C compiler lays them out
 *  (native/bpf/src/loader.c: struct ls_out, struct ls_agg_row, the NOTIFY record; `size` is
 *  sizeof). test/trace/c-side.test.ts compiles those structs and checks these numbers. */
export const LS_OUT = { kind: 0, spec: 4, pid: 8, tid: 12, ts: 16, args: 24, ret: 72, deref: 80, walk_bytes: 88, walk_nodes: 96, stack: 100, str: 104, size: 168 } as const;
export const LS_AGG_ROW = { pid: 0, spec: 4, site: 8, live_count: 16, live_bytes: 24, total_count: 32, total_bytes: 40, size: 48 } as const;
export const LS_NOTIFY = { kind: 0, pid: 4, ts: 8, a0: 16, a1: 24, size: 32 } as const;
export const NOTIFY_FORK = 2;
export const NOTIFY_EXIT = 3;

/** One probed call. The handler gets the same object for every call (filled afresh, no
 *  allocation per call): copy what it keeps. */
export interface CallRecord {
  spec: number;
  pid: number;
  tid: number;
  /** Nanoseconds since LoaderOptions.startMono (CLOCK_MONOTONIC), never negative. */
  t: number;
  args: number[];
  ret: number;
  deref: number;
  walkBytes: number;
  walkNodes: number;
  str: string;
  /** The loader's id of the call's stack (a `stack` handler call named it before); 0 = none. */
  stack: number;
}

export interface AggRow {
  pid: number;
  /** Spec index, or 0xffffffff for the per-pid count of frees of unknown blocks (in totalCount). */
  spec: number;
  site: number;
  liveCount: number;
  liveBytes: number;
  totalCount: number;
  totalBytes: number;
}

export interface LoaderHandlers {
  call(r: CallRecord): void;
  /** fork: a0 the child, a1 1 when it inherited every probe at fork (traced from its first
   *  instruction: it needs no attach); exit: a0 the exit code. */
  notify(kind: number, pid: number, ts: bigint, a0: number, a1: number): void;
  lost(ringbuf: number, maps: number): void;
  /** A stack the loader saw first: caller first, return addresses (the probed function itself
   *  is not included). Calls name it by `id` from now on. */
  stack(id: number, pid: number, pcs: number[]): void;
  /** The loader's stack table started afresh: forget every id. */
  stacksReset(): void;
}

export interface LoaderOptions {
  mode: 'events' | 'aggregate';
  stackBytes: number;
  ringbufMb: number;
  unwindLib?: string;
  /** CLOCK_MONOTONIC ns that calls' `t` counts from. */
  startMono: bigint;
}

/** The loader's path (the package's native/ or the per-user cache; where the package would have it when not built). */
export const loaderPath = (): string => nativePath('bpf');
/** The unwinder library, when built. */
export const unwindLib = (): string | undefined => findNative('unwind');

function u64(b: Buffer, o: number): number {
  return b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x100000000;
}

type Status = Record<string, unknown>;

export class BpfLoader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending: ((s: Status) => void)[] = [];
  private aggRows: AggRow[] = [];
  private stderr = '';
  private exited = false;
  private readonly exitPromise: Promise<number>;
  private doneResolve?: () => void;
  private readonly startHi: number;
  private readonly startLo: number;
  private readonly call: CallRecord = { spec: 0, pid: 0, tid: 0, t: 0, args: [0, 0, 0, 0, 0, 0], ret: 0, deref: 0, walkBytes: 0, walkNodes: 0, str: '', stack: 0 };
  unwinder = false;
  /** What start-up did to the machine or could not do (said once, with the loader's warnings). */
  private readonly notes: string[] = [];
  /** Instructions the verifier walked per BPF program (kept under half its limit). */
  verifiedInsns: Record<string, number> = {};
  /** What one probe hit costs a process on this machine (µs), measured by the loader as it
   *  started (a uprobe on a function of its own); undefined when it could not measure it. */
  hitCostUs: number | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly h: LoaderHandlers, startMono: bigint) {
    this.startHi = Number(startMono >> 32n);
    this.startLo = Number(startMono & 0xffffffffn);
    this.exitPromise = new Promise((resolve) => child.on('exit', (code) => { this.exited = true; resolve(code ?? 1); this.failPending(); }));
    child.stdout.on('data', (d: Buffer) => this.onData(d));
    child.stderr.on('data', (d: Buffer) => { this.stderr += d.toString('utf8'); if (this.stderr.length > 65536) this.stderr = this.stderr.slice(-65536); });
    child.stdin.on('error', () => {});
  }

  /** Starts the loader and waits until its programs are loaded. */
  static async start(opts: LoaderOptions, h: LoaderHandlers): Promise<BpfLoader> {
    const LOADER_PATH = loaderPath();
    if (!existsSync(LOADER_PATH)) throw new UserError(`the BPF loader is not built (${LOADER_PATH}): ${notBuiltHint('bpf')}`);
    // Inherited probes (a child traced from its first instruction after fork) are made through
    // tracefs uprobe events: a machine that booted without tracefs mounted gets it mounted, as
    // perf and bpftrace do; without it the loader attaches forked children after the fork.
    const tfs = ensureTracefs();
    const args = ['run', '--mode', opts.mode, '--stack-bytes', String(opts.stackBytes), '--ringbuf-mb', String(opts.ringbufMb)];
    if (opts.unwindLib) args.push('--unwind', opts.unwindLib);
    const child = spawn(LOADER_PATH, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const l = new BpfLoader(child, h, opts.startMono);
    const ready = await new Promise<Status | undefined>((resolve) => {
      l.pending.push(resolve);
      child.on('error', () => resolve(undefined));
    });
    if (!ready || !ready.ready) {
      await l.exitPromise;
      const why = l.stderr.trim().split('\n').pop()?.replace(/^leakscope-bpf: /, '') ?? 'it exited';
      throw new UserError(`cannot start BPF tracing: ${why}${/doctor/.test(why) ? '' : " (run 'leakscope doctor')"}`);
    }
    l.unwinder = ready.unwinder === true;
    if (tfs.mounted) l.notes.push('mounted tracefs at /sys/kernel/tracing (it was not mounted; forked processes inherit their probes through it)');
    // the loader's word, whatever mounted it or failed to
    if (ready.inheritance === false) l.notes.push(`${tfs.error ?? 'tracefs has no writable uprobe_events'}: processes forked while traced are attached after the fork and their first calls are missed (mount it with 'mount -t tracefs nodev /sys/kernel/tracing')`);
    if (ready.verifiedInsns && typeof ready.verifiedInsns === 'object') l.verifiedInsns = ready.verifiedInsns as Record<string, number>;
    if (typeof ready.hitNs === 'number' && ready.hitNs > 0) l.hitCostUs = ready.hitNs / 1000;
    return l;
  }

  /** The loader's own pid (never a target: tracing it would trace what it does for us). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Loader messages on stderr (warnings). */
  get warnings(): string[] {
    return [...this.notes, ...this.stderr.split('\n').filter((s) => s.trim() !== '').map((s) => s.replace(/^leakscope-bpf: /, ''))];
  }

  private failPending(): void {
    while (this.pending.length) this.pending.shift()!({ error: 'the BPF loader exited', ok: false });
    this.doneResolve?.();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let o = 0;
    const b = this.buf;
    while (o + 8 <= b.length) {
      const type = b.readUInt32LE(o);
      const len = b.readUInt32LE(o + 4);
      if (o + 8 + len > b.length) break;
      const at = o + 8;
      o += 8 + len;
      try {
        if (type === REC_CALL && len >= LS_OUT.size) this.callRecord(b, at);
        else this.record(type, b.subarray(at, at + len));
      } catch (err) {
        // a bad record must not take the session down; it is reported as lost
        this.h.lost(0, 0);
        this.stderr += `bad record from loader: ${(err as Error).message}\n`;
      }
    }
    this.buf = o === b.length ? Buffer.alloc(0) : b.subarray(o);
  }

  /** struct ls_out at b[o..], decoded in place into the one reused CallRecord. */
  private callRecord(b: Buffer, o: number): void {
    const c = this.call;
    const L = LS_OUT;
    c.spec = b.readUInt32LE(o + L.spec);
    c.pid = b.readUInt32LE(o + L.pid);
    c.tid = b.readUInt32LE(o + L.tid);
    // 64-bit nanoseconds as two halves: exact without a BigInt per call
    const t = (b.readUInt32LE(o + L.ts + 4) - this.startHi) * 0x100000000 + (b.readUInt32LE(o + L.ts) - this.startLo);
    c.t = t > 0 ? t : 0;
    const a = c.args;
    for (let i = 0; i < 6; i++) a[i] = u64(b, o + L.args + 8 * i);
    c.ret = u64(b, o + L.ret);
    c.deref = u64(b, o + L.deref);
    c.walkBytes = u64(b, o + L.walk_bytes);
    c.walkNodes = b.readUInt32LE(o + L.walk_nodes);
    c.stack = b.readUInt32LE(o + L.stack);
    if (b[o + L.str] === 0) c.str = '';
    else {
      const end = b.indexOf(0, o + L.str);
      c.str = b.toString('utf8', o + L.str, end < 0 || end > o + L.size ? o + L.size : end);
    }
    this.h.call(c);
  }

  private record(type: number, p: Buffer): void {
    if (type === REC_STACK) {
      const n = (p.length - 8) >> 3;
      const pcs: number[] = new Array(n);
      for (let i = 0; i < n; i++) pcs[i] = u64(p, 8 + 8 * i);
      this.h.stack(p.readUInt32LE(0), p.readUInt32LE(4), pcs);
    } else if (type === REC_STACKS_RESET) {
      this.h.stacksReset();
    } else if (type === REC_STATUS) {
      const s = JSON.parse(p.toString('utf8')) as Status;
      if (s.done) this.doneResolve?.();
      else this.pending.shift()?.(s);
    } else if (type === REC_LOST) {
      this.h.lost(u64(p, 0), u64(p, 8));
    } else if (type === REC_AGG) {
      const A = LS_AGG_ROW;
      this.aggRows.push({
        pid: p.readUInt32LE(A.pid), spec: p.readUInt32LE(A.spec), site: u64(p, A.site),
        liveCount: Number(p.readBigInt64LE(A.live_count)), liveBytes: Number(p.readBigInt64LE(A.live_bytes)),
        totalCount: u64(p, A.total_count), totalBytes: u64(p, A.total_bytes),
      });
    } else if (type === REC_NOTIFY) {
      const N = LS_NOTIFY;
      this.h.notify(p.readUInt32LE(N.kind), p.readUInt32LE(N.pid), p.readBigUInt64LE(N.ts), u64(p, N.a0), p.length >= N.size ? u64(p, N.a1) : 0);
    }
  }

  /** Sends one command and waits for its status reply. Fields must not hold TABs or newlines. */
  command(fields: (string | number)[]): Promise<Status> {
    for (const f of fields) if (/[\t\n\r\0]/.test(String(f))) return Promise.resolve({ ok: false, error: 'a field holds a control character' });
    if (this.exited) return Promise.resolve({ ok: false, error: 'the BPF loader exited' });
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.stdin.write(fields.join('\t') + '\n');
    });
  }

  /** Attaches spec `index` to `path`:`symbol` in `pid`, at `offset` in the file (the function's
   *  entry, found by symbols/elf.ts: the loader looks no symbol up itself) plus `skip` bytes. */
  async probe(index: number, pid: number, path: string, symbol: string, offset: number, skip = 0): Promise<{ ok: boolean; error?: string }> {
    const s = await this.command(['probe', index, pid, path, symbol, skip, offset]);
    return { ok: s.ok === true, error: typeof s.error === 'string' ? s.error : undefined };
  }

  async aggregate(): Promise<AggRow[]> {
    this.aggRows = [];
    await this.command(['aggdump']);
    const rows = this.aggRows;
    this.aggRows = [];
    return rows;
  }

  /** Detaches everything, drains queued events and waits for the loader to exit. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => { this.doneResolve = resolve; });
    this.child.stdin.write('quit\n');
    this.child.stdin.end();
    // the timer must not keep the process alive once the loader is gone
    await Promise.race([done.then(() => this.exitPromise), new Promise((r) => setTimeout(r, 10000).unref())]);
    if (!this.exited) this.child.kill('SIGKILL');
    await this.exitPromise;
  }
}
