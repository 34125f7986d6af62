// nginx debug logs (`error_log FILE debug;` on a --with-debug build, e.g. Debian's nginx).
//
// Lines: `YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CONN ]message`. Allocation messages come from
// ngx_alloc.c/ngx_palloc.c: `malloc: ADDR:SIZE`, `posix_memalign: ADDR:SIZE @ALIGN`,
// `memalign: ...`, `free: ADDR`, `free: ADDR, unused: N` (a pool block released by
// ngx_destroy_pool). Every block becomes an alloc/free of the heap, and its stack says what the
// connection was doing: outer frame `GET /path` (the URI without its query), leaf frame the
// nginx allocator. A connection's blocks come before its request line (r->pool is created
// first), so they wait in a per-connection buffer until the request is known or the connection
// closes: memory is bounded by the open connections (and a per-connection cap).
// A pool's first block is the `posix_memalign` of ngx_create_pool; ngx_destroy_pool releases its
// blocks in a row of `free: ADDR, unused: N` lines, which we count as pool destroys.
// Timestamps have one-second resolution: t is ns since the first line's second.

import { BinaryLines } from './binary-lines.js';
import type { Event, EventSink, Frame, TraceMeta } from '../model/events.js';
import { frame } from '../model/events.js';
import { StackInterner } from '../model/stacks.js';
import { showNumber } from '../model/limits.js';
import { FORMAT_VERSION } from '../trace/format.js';
import type { Source, SourceInput, SourceStats } from './source.js';
import { emptyStats } from './source.js';
import { decodeLines, hexDigit, sampleLine, startsWith } from './line-reader.js';

const MAX_BUFFERED = 4096;
/** Closed connections whose label is remembered for their last lines. */
const MAX_CLOSED = 1024;
/** Events of a process held until its parent is known. */
const MAX_QUEUE = 20000;
/** Events a worker with a known parent holds while waiting for its title. */
const TITLE_WAIT = 256;
/** Distinct (allocator, request path) sites per process before the rest are pooled together. */
const MAX_LABELS = 10000;
const OTHER_PATHS = '(other request paths, past the distinct-path limit)';
const MAX_SAMPLES = 5;
const b = (s: string) => Buffer.from(s, 'latin1');
const M_MALLOC = b('malloc: ');
const M_POSIX = b('posix_memalign: ');
const M_MEMALIGN = b('memalign: ');
const M_FREE = b('free: ');
const M_ADD_CLEANUP = b('add cleanup: ');
const M_RUN_CLEANUP = b('run cleanup: ');
const M_REQ_LINE = b('http request line: "');
const M_URI = b('http uri: "');
const M_CLOSE_CONN = b('close http connection: ');
const M_CLOSE_REQ = b('http close request');
const M_ACCEPT = b('accept: ');
const M_START_WORKER = b('start worker process ');
const M_TITLE = b('setproctitle: "');

const enum AllocKind { Malloc, Posix, Memalign }
const ALLOC_FRAMES: Frame[] = [
  frame({ fn: 'ngx_alloc', file: 'src/os/unix/ngx_alloc.c' }),
  frame({ fn: 'ngx_memalign', file: 'src/os/unix/ngx_alloc.c' }),
  frame({ fn: 'ngx_memalign', file: 'src/os/unix/ngx_alloc.c' }),
];
const NO_CONNECTION = '(worker, outside any connection)';
const NO_REQUEST = '(connection, before or without a request)';

interface Block { addr: number; size: number; kind: AllocKind; t: number; tid: number; conn: Conn | null; gone: boolean }

interface Conn {
  n: number;
  /** `GET /path` of the current request, null while waiting for its request line. */
  label: string | null;
  lastLabel: string | null;
  method: string;
  buffered: Block[];
}

interface Proc {
  pid: number;
  announced: boolean;
  /** Events waiting for the process to be announced (see out()). */
  queue: Event[];
  /** From `setproctitle: "..."`, '' until seen. */
  title: string;
  conns: Map<number, Conn>;
  /** Blocks waiting for their connection's request, by address. */
  waiting: Map<number, Block>;
  /** A block allocated outside a connection, which the next line may claim (`*N accept:`). */
  orphan: Block | null;
  /** Cleanup handlers added and not yet run → the connection they were added on (0: none). */
  cleanups: Map<number, number>;
  /** Inside a row of `free: ADDR, unused: N` lines (one ngx_destroy_pool). */
  inDestroy: boolean;
  poolDestroys: number;
  stacks: Map<string, number>;
  closed: Map<number, string>;
}

export class NginxLogDecoder {
  readonly stats: SourceStats = emptyStats();
  skipped = 0;
  readonly binary = new BinaryLines();
  /** Per pid: pool destroys seen (rows of `free: ..., unused:` lines). */
  readonly poolDestroys = new Map<number, number>();
  private readonly procs = new Map<number, Proc>();
  private readonly ppids = new Map<number, number>();
  private readonly interner: StackInterner;
  private lineNo = 0;
  private startSec = -1;
  private lastStamp = Buffer.alloc(19);
  private lastSec = 0;
  startWallMs: number | undefined;
  // Current line
  private t = 0;
  private tid = 0;

  constructor(private readonly sink: EventSink) {
    this.interner = new StackInterner(sink);
  }

  private emit(e: Event): void {
    this.stats.events++;
    this.sink.event(e);
  }

  private bad(buf: Buffer, s: number, e: number, why: string): void {
    this.stats.badRecords++;
    if (this.stats.badSamples.length < MAX_SAMPLES) this.stats.badSamples.push(sampleLine(this.lineNo, buf, s, e, why));
  }

  line(buf: Buffer, start: number, end: number): void {
    this.lineNo++;
    // `2026/11/22 05:30:02 [debug] 3643#0: `
    if (end - start < 24 || buf[start + 4] !== 47 || buf[start + 10] !== 32 || buf[start + 13] !== 58 || buf[start + 20] !== 91) {
      if (end > start) {
        this.skipped++; // continuation lines of multi-line messages (response headers...)
        this.binary.check(buf, start, end, this.lineNo);
      }
      return;
    }
    let p = start + 21;
    while (p < end && p < start + 32 && buf[p] !== 93) p++; // ']' after the level name
    if (p >= end || buf[p] !== 93) { this.skipped++; return; }
    p += 2;
    let pid = 0;
    let d = 0;
    while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { pid = pid * 10 + buf[p]! - 48; p++; d++; }
    if (!d || buf[p] !== 35) { this.bad(buf, start, end, 'no PID#TID'); return; }
    p++;
    let tid = 0;
    while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { tid = tid * 10 + buf[p]! - 48; p++; }
    if (buf[p] !== 58) { this.bad(buf, start, end, 'no PID#TID'); return; }
    p += 2;
    let conn = 0;
    if (buf[p] === 42) {
      p++;
      while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { conn = conn * 10 + buf[p]! - 48; p++; }
      p++;
    }
    this.stamp(buf, start);
    this.tid = tid;
    const pr = this.proc(pid);
    this.message(pr, conn, buf, p, end, start);
  }

  private stamp(buf: Buffer, start: number): void {
    let same = true;
    for (let i = 0; i < 19; i++) if (buf[start + i] !== this.lastStamp[i]) { same = false; break; }
    if (!same) {
      buf.copy(this.lastStamp, 0, start, start + 19);
      const s = this.lastStamp.toString('latin1');
      const ms = new Date(+s.slice(0, 4), +s.slice(5, 7) - 1, +s.slice(8, 10), +s.slice(11, 13), +s.slice(14, 16), +s.slice(17, 19)).getTime();
      if (Number.isFinite(ms)) {
        if (this.startSec < 0) { this.startSec = ms; this.startWallMs = ms; }
        this.lastSec = Math.max(0, ms - this.startSec) * 1e6;
      }
    }
    this.t = this.lastSec;
  }

  private proc(pid: number): Proc {
    let pr = this.procs.get(pid);
    if (!pr) {
      pr = { pid, announced: false, queue: [], title: '', conns: new Map(), waiting: new Map(), orphan: null, cleanups: new Map(), inDestroy: false, poolDestroys: 0, stacks: new Map(), closed: new Map() };
      this.procs.set(pid, pr);
    }
    return pr;
  }

  /** The master logs `start worker process N` after fork(), and on a busy machine the worker
   *  can log many lines first. So a process's events wait (bounded) until its parent is known,
   *  it has logged MAX_QUEUE events, or the input ends; then it is announced and they follow. */
  private out(pr: Proc, e: Event): void {
    if (!pr.announced && this.ready(pr)) this.announce(pr);
    if (pr.announced) return this.emit(e);
    pr.queue.push(e);
    if (pr.queue.length >= MAX_QUEUE) this.announce(pr);
  }

  /** Parent known, and its title too (setproctitle comes a few lines into a worker's life). */
  private ready(pr: Proc): boolean {
    return this.ppids.has(pr.pid) && (pr.title !== '' || pr.queue.length >= TITLE_WAIT);
  }

  private announce(pr: Proc): void {
    pr.announced = true;
    const first = pr.queue[0];
    this.emit({ kind: 'process', pid: pr.pid, t: first ? first.t : this.t, ppid: this.ppids.get(pr.pid) ?? 0, command: pr.title, exe: '' });
    for (const e of pr.queue) this.emit(e);
    pr.queue = [];
  }

  private message(pr: Proc, connNo: number, buf: Buffer, p: number, end: number, start: number): void {
    const c0 = buf[p];
    const orphan = pr.orphan;
    if (orphan) {
      pr.orphan = null;
      if (connNo && c0 === 97 && startsWith(buf, p, end, M_ACCEPT)) {
        // The connection's pool is allocated just before its number is first logged.
        this.claim(pr, this.conn(pr, connNo), orphan);
        return;
      }
      this.emitBlock(pr, orphan, NO_CONNECTION);
    }
    const wasDestroy = pr.inDestroy;
    pr.inDestroy = false;
    if (c0 === 109 && startsWith(buf, p, end, M_MALLOC)) return this.alloc(pr, connNo, AllocKind.Malloc, buf, p + M_MALLOC.length, end, start);
    if (c0 === 112 && startsWith(buf, p, end, M_POSIX)) return this.alloc(pr, connNo, AllocKind.Posix, buf, p + M_POSIX.length, end, start);
    if (c0 === 109 && startsWith(buf, p, end, M_MEMALIGN)) return this.alloc(pr, connNo, AllocKind.Memalign, buf, p + M_MEMALIGN.length, end, start);
    if (c0 === 102 && startsWith(buf, p, end, M_FREE)) return this.free(pr, buf, p + M_FREE.length, end, start, wasDestroy);
    if (c0 === 97 && startsWith(buf, p, end, M_ADD_CLEANUP)) {
      const h = parseHex(buf, p + M_ADD_CLEANUP.length, end);
      if (h < 0) return this.bad(buf, start, end, 'bad cleanup address');
      pr.cleanups.set(h, connNo);
      return;
    }
    if (c0 === 114 && startsWith(buf, p, end, M_RUN_CLEANUP)) {
      const h = parseHex(buf, p + M_RUN_CLEANUP.length, end);
      if (h < 0) return this.bad(buf, start, end, 'bad cleanup address');
      pr.cleanups.delete(h);
      return;
    }
    if (c0 === 104 && connNo) {
      if (startsWith(buf, p, end, M_REQ_LINE)) return this.requestLine(pr, connNo, buf, p + M_REQ_LINE.length, end);
      if (startsWith(buf, p, end, M_URI)) return this.uri(pr, connNo, buf, p + M_URI.length, end);
      if (startsWith(buf, p, end, M_CLOSE_REQ)) {
        const c = pr.conns.get(connNo);
        if (c && c.label) { c.lastLabel = c.label; c.label = null; }
      }
      return;
    }
    if (c0 === 99 && connNo && startsWith(buf, p, end, M_CLOSE_CONN)) {
      const c = pr.conns.get(connNo);
      if (c) {
        const label = c.label ?? c.lastLabel ?? NO_REQUEST;
        this.flush(pr, c, label);
        // Forget the connection (memory stays bounded by open connections), but remember its
        // label a while: its last lines (its pool's blocks) still carry its number.
        pr.conns.delete(connNo);
        pr.closed.set(connNo, label);
        if (pr.closed.size > MAX_CLOSED) pr.closed.delete(pr.closed.keys().next().value!);
      }
      return;
    }
    if (c0 === 115 && !connNo && startsWith(buf, p, end, M_START_WORKER)) {
      let n = 0;
      for (let q = p + M_START_WORKER.length; q < end && buf[q]! >= 48 && buf[q]! <= 57; q++) n = n * 10 + buf[q]! - 48;
      if (n) {
        this.ppids.set(n, pr.pid);
        const child = this.procs.get(n);
        if (child && !child.announced && this.ready(child)) this.announce(child);
      }
      return;
    }
    if (c0 === 115 && !connNo && !pr.announced && startsWith(buf, p, end, M_TITLE)) {
      // `setproctitle: "nginx: worker process"`: the process's command line as ps shows it.
      const q = p + M_TITLE.length;
      const close = buf.indexOf(34, q);
      pr.title = buf.toString('utf8', q, close > q && close < end ? close : end);
      if (this.ready(pr)) this.announce(pr);
    }
  }

  private conn(pr: Proc, n: number): Conn {
    let c = pr.conns.get(n);
    if (!c) {
      const closedLabel = pr.closed.get(n) ?? null;
      c = { n, label: closedLabel, lastLabel: closedLabel, method: '', buffered: [] };
      pr.conns.set(n, c);
    }
    return c;
  }

  private claim(pr: Proc, c: Conn, blk: Block): void {
    blk.conn = c;
    if (c.label) return this.emitBlock(pr, blk, c.label);
    if (c.buffered.length >= MAX_BUFFERED) this.flush(pr, c, NO_REQUEST);
    c.buffered.push(blk);
    pr.waiting.set(blk.addr, blk);
  }

  private alloc(pr: Proc, connNo: number, kind: AllocKind, buf: Buffer, p: number, end: number, start: number): void {
    const addr = parseHex(buf, p, end);
    if (addr < 0 || buf[hexStop] !== 58) return this.bad(buf, start, end, 'bad allocation line');
    let size = 0;
    let d = 0;
    for (let q = hexStop + 1; q < end && buf[q]! >= 48 && buf[q]! <= 57; q++) { size = size * 10 + buf[q]! - 48; d++; }
    if (!d) return this.bad(buf, start, end, 'bad allocation size');
    const blk: Block = { addr, size, kind, t: this.t, tid: this.tid, conn: null, gone: false };
    if (!connNo) {
      pr.orphan = blk;
      return;
    }
    this.claim(pr, this.conn(pr, connNo), blk);
  }

  private free(pr: Proc, buf: Buffer, p: number, end: number, start: number, wasDestroy: boolean): void {
    const addr = parseHex(buf, p, end);
    if (addr < 0) return this.bad(buf, start, end, 'bad free line');
    if (buf[hexStop] === 44) {
      // `free: ADDR, unused: N`: a pool block released by ngx_destroy_pool; a row of them is one pool.
      if (!wasDestroy) pr.poolDestroys++;
      pr.inDestroy = true;
    }
    const w = pr.waiting.get(addr);
    if (w) {
      // Allocated and freed before its request was known: nothing outstanding, nothing to say.
      pr.waiting.delete(addr);
      w.gone = true;
      return;
    }
    this.out(pr, { kind: 'free', pid: pr.pid, t: this.t, tid: this.tid, addr });
  }

  private requestLine(pr: Proc, connNo: number, buf: Buffer, p: number, end: number): void {
    // "GET /scratch?forget=1 HTTP/1.1"
    let q = buf.indexOf(34, p);
    if (q < 0 || q > end) q = end;
    const text = buf.toString('utf8', p, q);
    const sp = text.indexOf(' ');
    const method = sp > 0 ? text.slice(0, sp) : text;
    let target = sp > 0 ? text.slice(sp + 1) : '';
    const sp2 = target.lastIndexOf(' HTTP/');
    if (sp2 >= 0) target = target.slice(0, sp2);
    const qm = target.indexOf('?');
    if (qm >= 0) target = target.slice(0, qm);
    const c = this.conn(pr, connNo);
    c.method = method;
    this.setLabel(pr, c, `${method} ${target || '/'}`);
  }

  private uri(pr: Proc, connNo: number, buf: Buffer, p: number, end: number): void {
    let q = buf.indexOf(34, p);
    if (q < 0 || q > end) q = end;
    const c = this.conn(pr, connNo);
    const label = `${c.method || '?'} ${buf.toString('utf8', p, q)}`;
    if (label !== c.label) this.setLabel(pr, c, label);
  }

  private setLabel(pr: Proc, c: Conn, label: string): void {
    c.label = label;
    if (c.buffered.length) this.flush(pr, c, label);
  }

  private flush(pr: Proc, c: Conn, label: string): void {
    for (const blk of c.buffered) {
      if (blk.gone) continue;
      pr.waiting.delete(blk.addr);
      this.emitBlock(pr, blk, label);
    }
    c.buffered = [];
  }

  private emitBlock(pr: Proc, blk: Block, label: string): void {
    let key = `${blk.kind}\u0000${label}`;
    let stack = pr.stacks.get(key);
    if (stack === undefined && pr.stacks.size >= MAX_LABELS) {
      // Unbounded distinct paths (ids in URIs): past the cap they share one site.
      key = `${blk.kind}\u0000${OTHER_PATHS}`;
      label = OTHER_PATHS;
      stack = pr.stacks.get(key);
    }
    if (stack === undefined) {
      stack = this.interner.stackId([ALLOC_FRAMES[blk.kind]!, frame({ fn: label })], pr.pid);
      pr.stacks.set(key, stack);
    }
    this.out(pr, { kind: 'alloc', pid: pr.pid, t: blk.t, tid: blk.tid, addr: blk.addr, size: blk.size, stack });
  }

  /** Sizes of the per-process state (to check it stays bounded). */
  stateSize(): { conns: number; waiting: number; closed: number; sites: number } {
    const out = { conns: 0, waiting: 0, closed: 0, sites: 0 };
    for (const pr of this.procs.values()) {
      out.conns += pr.conns.size;
      out.waiting += pr.waiting.size;
      out.closed += pr.closed.size;
      out.sites += pr.stacks.size;
    }
    return out;
  }

  finish(): SourceStats {
    for (const pr of this.procs.values()) {
      if (pr.orphan) this.emitBlock(pr, pr.orphan, NO_CONNECTION);
      pr.orphan = null;
      for (const c of pr.conns.values()) this.flush(pr, c, c.label ?? c.lastLabel ?? NO_REQUEST);
      this.poolDestroys.set(pr.pid, pr.poolDestroys);
      if (!pr.announced) this.announce(pr);
    }
    for (const pr of this.procs.values()) {
      let pending = 0;
      for (const conn of pr.cleanups.values()) if (conn) pending++;
      if (pending) this.stats.warnings.push(`pid ${showNumber(pr.pid)}: ${pending} pool cleanup handler(s) added on a connection and never run (their pools were likely never destroyed)`);
    }
    if (this.procs.size === 0) this.stats.warnings.push('no nginx log lines found ("YYYY/MM/DD HH:MM:SS [level] PID#TID: ..."): is this an nginx error_log?');
    else if (!this.stats.events || ![...this.procs.values()].some((pr) => pr.stacks.size > 0)) {
      this.stats.warnings.push('no allocation lines (malloc:, posix_memalign:, free:) found: set "error_log FILE debug;" (or debug_alloc) on an nginx built --with-debug');
    }
    if (this.skipped) this.stats.warnings.push(`skipped ${this.skipped} line(s) without an nginx log prefix (continuations of multi-line messages)`);
    this.stats.skipped = this.skipped;
    return this.stats;
  }
}

let hexStop = 0;
/** Upper- or lower-case hex without 0x (nginx's %p); sets hexStop to the byte after it. */
function parseHex(buf: Buffer, p: number, end: number): number {
  if (buf[p] === 48 && (buf[p + 1] === 120 || buf[p + 1] === 88)) p += 2;
  let v = 0;
  let d = 0;
  while (p < end) {
    const x = hexDigit(buf[p]!);
    if (x < 0) break;
    v = v * 16 + x;
    p++;
    d++;
  }
  hexStop = p;
  return d && d <= 16 && v <= Number.MAX_SAFE_INTEGER ? v : -1;
}

export const nginxLogSource: Source = {
  name: 'nginx-log',
  description: 'nginx debug log (error_log FILE debug; on a --with-debug build such as Debian\'s)',
  detect(head: Buffer): number {
    const text = head.toString('latin1', 0, Math.min(head.length, 65536));
    const re = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: /m;
    if (!re.test(text)) return 0;
    return /\] \d+#\d+: (\*\d+ )?(malloc|posix_memalign|free): /.test(text) ? 0.9 : 0.6;
  },
  meta(input: SourceInput): TraceMeta {
    const meta: TraceMeta = { format: FORMAT_VERSION, clock: 'ns', source: 'nginx-log', command: input.path };
    const m = input.head ? /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) \[/m.exec(input.head.toString('latin1', 0, 65536)) : null;
    if (m) meta.startWallMs = new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime();
    return meta;
  },
  async read(input: SourceInput, sink: EventSink): Promise<SourceStats> {
    const dec = new NginxLogDecoder(sink);
    return decodeLines(input, dec);
  },
};
