// APR pool-debug logs (APR built --enable-pool-debug, lines "POOL DEBUG: [PID/TID] ACTION ...").
//
// The log has no clock: t is the event's line index within its process. A pool is (pid, address).
// The log's TID is pthread_self() (an address, not a kernel tid): events carry a small
// per-process thread number instead (1 for the first thread seen).
// A PALLOC line does not print the allocation's size: it is the change of the pool's own byte
// count since that pool's previous line (allocations APR does not log, e.g. apr_psprintf, land
// in the next line's change, as the format dictates).
//
// Destroy/clear ordering as APR writes it (apr_pools.c, pool debug):
//   apr_pool_destroy(P): DESTROY P, then CLEARED for every descendant (children destroyed by
//                        their parent get no DESTROY line), then CLEARED P.
//   apr_pool_clear(P):   CLEAR P, CLEARED for every descendant, then CLEARED P.
// We emit the whole effect at the DESTROY/CLEAR line — each known descendant's pool-destroy,
// innermost first, then P's destroy/clear — so every pool is destroyed exactly once even if the
// consumer also destroys children recursively; the CLEARED lines that follow only confirm it.
// A pool allocates its mutex before it is linked to its parent, so its first PALLOC lines can
// precede its CREATE line with parent 0x0: such lines wait (bounded) for the CREATE line.
// Pools older than the log (or inherited over fork) are created when first met; the bytes they
// already hold are a silent baseline (no site, no time), so only changes seen in the log count.
// A parent known only through its children is never created (the consumer made it implicitly
// with the first child; creating it again would end them): its first line just names it.

import { BinaryLines } from './binary-lines.js';
import type { EventSink, TraceMeta } from '../model/events.js';
import { frame } from '../model/events.js';
import { StackInterner } from '../model/stacks.js';
import { FORMAT_VERSION } from '../trace/format.js';
import type { Source, SourceInput, SourceStats } from './source.js';
import { emptyStats } from './source.js';
import { decodeLines, hexDigit, sampleLine } from './line-reader.js';
import { postOrder } from '../model/tree.js';
import { showNumber } from '../model/limits.js';

const PREFIX = Buffer.from('POOL DEBUG: [', 'latin1');
const MAX_PENDING = 32;
const MAX_SAMPLES = 5;

const enum Act { PALLOC, PCALLOC, CREATE, CREATEU, DESTROY, CLEAR, CLEARED, GLOBAL, LIFE, OWNER, THREAD, HEADER }

/** One parsed line. The reused instance decodes its tag and site only when asked (the hot path
 *  compares bytes instead); lines that must wait are snapshotted with plain strings. */
interface Rec {
  act: Act;
  pid: number;
  tid: number;
  size: number;
  pool: number;
  readonly tag: string;
  readonly site: string;
  parent: number;
  allocs: number;
  total: number;
  clears: number;
}

class LineRec implements Rec {
  act = Act.HEADER;
  pid = 0;
  tid = 0;
  size = 0;
  pool = 0;
  parent = 0;
  allocs = 0;
  total = 0;
  clears = 0;
  buf: Buffer = Buffer.alloc(0);
  tagS = 0;
  tagE = 0;
  siteS = 0;
  siteE = 0;
  get tag(): string { return this.buf.toString('utf8', this.tagS, this.tagE); }
  get site(): string { return this.buf.toString('utf8', this.siteS, this.siteE); }
  snapshot(): Rec {
    return { act: this.act, pid: this.pid, tid: this.tid, size: this.size, pool: this.pool, tag: this.tag, site: this.site,
      parent: this.parent, allocs: this.allocs, total: this.total, clears: this.clears };
  }
}

interface Pool {
  addr: number;
  parent: number;
  tag: string;
  /** The tag's bytes as last logged, to notice a change without decoding every line. */
  tagBytes?: Buffer;
  /** Known only as a parent so far (see link()). */
  phantom?: boolean;
  size: number;
  live: boolean;
  /** Lines seen before the pool's CREATE line (parent still 0x0). */
  pending?: Rec[];
}

interface Proc {
  pid: number;
  t: number;
  announced: boolean;
  lastLine: number;
  pools: Map<number, Pool>;
  /** parent address → live child addresses (kept even when the parent itself was never seen). */
  children: Map<number, Set<number>>;
  siteStacks: Map<string, number>;
  /** Site bytes → stack id, by hash (the hot path). */
  siteByHash: Map<number, { bytes: Buffer; id: number }>;
  /** Destroy/clear operations whose own CLEARED line has not come yet. */
  ops: { addr: number; site: string }[];
  lastPool?: Pool;
  /** pthread_self values (not kernel tids) → small thread numbers 1, 2, ... of this process. */
  tids: Map<number, number>;
  lastRawTid: number;
  lastTid: number;
}

export function parseAprLine(buf: Buffer, start: number, end: number, r: LineRec): boolean {
  r.buf = buf;
  let p = start + PREFIX.length;
  // [PID/TID]
  let pid = 0;
  let digits = 0;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { pid = pid * 10 + buf[p]! - 48; p++; digits++; }
  if (!digits) return false;
  let tid = 0;
  if (buf[p] === 47) {
    p++;
    while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { tid = tid * 10 + buf[p]! - 48; p++; }
  }
  if (buf[p] !== 93) return false;
  p++;
  while (p < end && buf[p] === 32) p++;
  const a0 = p;
  while (p < end && buf[p]! >= 65 && buf[p]! <= 90) p++;
  const alen = p - a0;
  const c0 = buf[a0];
  let act: Act;
  if (c0 === 80) act = alen === 6 && buf[a0 + 1] === 65 ? Act.PALLOC : alen === 7 && buf[a0 + 1] === 67 ? Act.PCALLOC : -1 as Act;
  else if (c0 === 67) {
    if (alen === 6) act = buf[a0 + 1] === 82 ? Act.CREATE : -1 as Act;
    else if (alen === 7) act = buf[a0 + 1] === 82 ? Act.CREATEU : buf[a0 + 6] === 68 ? Act.CLEARED : -1 as Act;
    else if (alen === 5) act = Act.CLEAR;
    else act = -1 as Act;
  } else if (c0 === 68 && alen === 7) act = Act.DESTROY;
  else if (c0 === 71 && alen === 6) act = Act.GLOBAL;
  else if (c0 === 76 && alen === 4) act = Act.LIFE;
  else if (c0 === 79 && alen === 5) act = Act.OWNER;
  else if (c0 === 84 && alen === 6) act = Act.THREAD;
  else if (c0 === 65 && alen === 6) act = Act.HEADER; // the column header line "ACTION  (SIZE ..."
  else act = -1 as Act;
  if (act < 0) return false;
  r.act = act;
  r.pid = pid;
  r.tid = tid;
  if (act === Act.HEADER) return true;
  while (p < end && buf[p] === 32) p++;
  if (act >= Act.GLOBAL) {
    // Short form: 0xPOOL <FILE:LINE>
    const addr = parseHexAt(buf, p, end);
    if (addr < 0) return false;
    r.pool = addr;
    p = hexEnd;
    const lt = buf.indexOf(60, p);
    const gt = lt < 0 || lt >= end ? -1 : buf.lastIndexOf(62, end - 1);
    if (gt > lt) { r.siteS = lt + 1; r.siteE = gt; } else r.siteS = r.siteE = 0;
    r.size = 0; r.parent = 0; r.tagS = r.tagE = 0; r.allocs = r.total = r.clears = 0;
    return true;
  }
  // (SIZE/POOL SIZE/TOTAL SIZE): three numbers right-aligned in 10 columns. Fast path: jump
  // straight over the columns when they are all that wide (numbers below 10^10).
  if (buf[p] !== 40) return false;
  const open0 = p;
  if (buf[open0 + 11] === 47 && buf[open0 + 22] === 47 && buf[open0 + 33] === 41 && open0 + 33 < end) {
    p = open0 + 1;
    while (buf[p] === 32) p++;
  } else {
    p++;
    while (p < end && buf[p] === 32) p++;
  }
  let size = 0;
  digits = 0;
  while (p < end && buf[p]! >= 48 && buf[p]! <= 57) { size = size * 10 + buf[p]! - 48; p++; digits++; }
  if (!digits) return false;
  r.size = size;
  if (buf[p] === 47 && buf[open0 + 33] === 41 && p === open0 + 11) p = open0 + 33;
  // Byte loops rather than indexOf: these spans are short and a native call costs more.
  while (p < end && buf[p] !== 41) p++;
  if (p >= end) return false;
  p++;
  while (p < end && buf[p] === 32) p++;
  const pool = parseHexAt(buf, p, end);
  if (pool < 0) return false;
  r.pool = pool;
  p = hexEnd;
  // Tail, parsed from the end so that a tag holding odd characters cannot derail it:
  // "TAG" <SITE> 0xPARENT (A/T/C)
  let e = end;
  while (e > p && (buf[e - 1] === 32 || buf[e - 1] === 13)) e--;
  if (buf[e - 1] !== 41) return false;
  let open = e - 2;
  while (open >= p && buf[open] !== 40) open--;
  if (open < p) return false;
  let q = open + 1;
  let n = 0;
  let k = 0;
  let t0 = 0;
  let t1 = 0;
  for (; q < e - 1; q++) {
    const c = buf[q]!;
    if (c === 47) { if (k === 0) t0 = n; else t1 = n; k++; n = 0; }
    else if (c >= 48 && c <= 57) n = n * 10 + c - 48;
    else return false;
  }
  if (k !== 2) return false;
  r.allocs = t0; r.total = t1; r.clears = n;
  let s = open - 1;
  while (s > p && buf[s] === 32) s--;
  // parent hex ends at s: read it backwards
  let h = s;
  let parent = 0;
  let mul = 1;
  for (; h > p; h--) {
    const d = hexDigit(buf[h]!);
    if (d < 0) break;
    parent += d * mul;
    mul *= 16;
  }
  // h is at 'x'
  if (buf[h] !== 120 || buf[h - 1] !== 48 || h === s || s - h > 13) return false;
  r.parent = parent;
  let g = h - 2;
  while (g > p && buf[g] === 32) g--;
  if (buf[g] !== 62) return false;
  let lt = g - 1;
  while (lt >= p && buf[lt] !== 60) lt--;
  if (lt < p) return false;
  r.siteS = lt + 1;
  r.siteE = g;
  let qe = lt - 1;
  while (qe > p && buf[qe] === 32) qe--;
  if (buf[qe] !== 34 || buf[p] !== 34 || qe <= p) return false;
  r.tagS = p + 1;
  r.tagE = qe;
  return true;
}

let hexEnd = 0;
/** Parses "0x..." at p; sets hexEnd past the last digit (then past spaces). */
function parseHexAt(buf: Buffer, p: number, end: number): number {
  if (buf[p] !== 48 || buf[p + 1] !== 120) return -1;
  p += 2;
  let v = 0;
  let digits = 0;
  while (p < end) {
    const d = hexDigit(buf[p]!);
    if (d < 0) break;
    v = v * 16 + d;
    p++;
    digits++;
  }
  if (!digits || digits > 13) return -1;
  while (p < end && buf[p] === 32) p++;
  hexEnd = p;
  return v;
}

/** FNV-1a of a byte range (for byte-keyed caches). */
function hashBytes(buf: Buffer, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

function sameBytes(a: Buffer, buf: Buffer, s: number, e: number): boolean {
  if (a.length !== e - s) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[s + i]) return false;
  return true;
}

/** Turns parsed lines into events; one instance per input. */
export class AprLogDecoder {
  private readonly procs = new Map<number, Proc>();
  private readonly interner: StackInterner;
  private lineNo = 0;
  readonly stats: SourceStats = emptyStats();
  /** Lines that are not pool-debug events (httpd's own log lines, glibc messages). */
  skipped = 0;
  readonly binary = new BinaryLines();
  private threadLines = 0;
  private firstThread = '';
  private readonly rec = new LineRec();
  private lastProc: Proc | undefined;

  constructor(private readonly sink: EventSink) {
    this.interner = new StackInterner(sink);
  }

  line(buf: Buffer, start: number, end: number): void {
    this.lineNo++;
    // Cheap prefix test first: most lines of a pool-debug log are events.
    if (end - start < PREFIX.length || buf[start] !== 80 || buf[start + 5] !== 68 || buf[start + 12] !== 91
      || buf[start + 1] !== 79 || buf[start + 10] !== 58) {
      if (end > start && !(end - start === 1 && buf[start] === 13)) {
        this.skipped++;
        this.binary.check(buf, start, end, this.lineNo);
      }
      return;
    }
    const r = this.rec;
    if (!parseAprLine(buf, start, end, r)) {
      this.bad(buf, start, end, 'not a pool-debug event');
      return;
    }
    if (r.act === Act.HEADER) return;
    this.handle(r);
  }

  private bad(buf: Buffer, start: number, end: number, why: string): void {
    this.stats.badRecords++;
    if (this.stats.badSamples.length < MAX_SAMPLES) this.stats.badSamples.push(sampleLine(this.lineNo, buf, start, end, why));
  }

  private proc(pid: number): Proc {
    if (this.lastProc?.pid === pid) return this.lastProc;
    let p = this.procs.get(pid);
    if (!p) {
      p = { pid, t: 0, announced: false, lastLine: 0, pools: new Map(), children: new Map(), siteStacks: new Map(), siteByHash: new Map(), ops: [], tids: new Map(), lastRawTid: -1, lastTid: 0 };
      this.procs.set(pid, p);
    }
    this.lastProc = p;
    return p;
  }

  /** Announces a process the first time it emits, guessing its parent from shared pool
   *  addresses (fork copies them): a process that holds the pool itself beats one that only
   *  knows it as a parent (a sibling forked from the same process); then the most recent. */
  private announce(pr: Proc, r: Rec): void {
    pr.announced = true;
    let ppid = 0;
    let bestScore = 0;
    let bestLine = -1;
    for (const other of this.procs.values()) {
      if (other === pr) continue;
      let score = 0;
      // A pool being created here is new in this process: only its parent can be inherited.
      const creating = r.act === Act.CREATE || r.act === Act.CREATEU;
      for (const a of creating ? [r.parent] : [r.pool, r.parent]) {
        if (a === 0) continue;
        const pool = other.pools.get(a);
        if (pool && !pool.phantom) score = Math.max(score, 2);
        else if (pool || other.children.has(a)) score = Math.max(score, 1);
      }
      if (score > bestScore || (score === bestScore && score > 0 && other.lastLine > bestLine)) {
        ppid = other.pid;
        bestScore = score;
        bestLine = other.lastLine;
      }
    }
    this.emit({ kind: 'process', pid: pr.pid, t: pr.t, ppid, command: '', exe: '' });
  }

  private emit(e: Parameters<EventSink['event']>[0]): void {
    this.stats.events++;
    this.sink.event(e);
  }

  private siteStack(pr: Proc, site: string): number {
    let id = pr.siteStacks.get(site);
    if (id === undefined) {
      if (!site || site === 'undefined') id = 0;
      else {
        const colon = site.lastIndexOf(':');
        const line = colon > 0 ? Number(site.slice(colon + 1)) : NaN;
        const f = Number.isInteger(line) && line > 0
          ? frame({ file: site.slice(0, colon), line })
          : frame({ fn: site });
        id = this.interner.stackId([f], pr.pid);
      }
      pr.siteStacks.set(site, id);
    }
    return id;
  }

  /** The stack of the current line's site, without decoding it when seen before. */
  private lineSiteStack(pr: Proc, r: LineRec): number {
    const h = hashBytes(r.buf, r.siteS, r.siteE);
    const hit = pr.siteByHash.get(h);
    if (hit && sameBytes(hit.bytes, r.buf, r.siteS, r.siteE)) return hit.id;
    const id = this.siteStack(pr, r.site);
    pr.siteByHash.set(h, { bytes: Buffer.from(r.buf.subarray(r.siteS, r.siteE)), id });
    return id;
  }

  private unloggedStack(pr: Proc): number {
    return this.siteStack(pr, '(allocation APR did not log, e.g. apr_psprintf)');
  }

  private handle(r: Rec): void {
    const pr = this.proc(r.pid);
    // The log's TID is pthread_self(), an address: events carry a small per-process thread number.
    if (r.tid !== pr.lastRawTid) {
      let n = pr.tids.get(r.tid);
      if (n === undefined) { n = pr.tids.size + 1; pr.tids.set(r.tid, n); }
      pr.lastRawTid = r.tid;
      pr.lastTid = n;
    }
    r.tid = pr.lastTid;
    pr.t++;
    pr.lastLine = this.lineNo;
    switch (r.act) {
      case Act.PALLOC:
      case Act.PCALLOC: return this.alloc(pr, r);
      case Act.CREATE:
      case Act.CREATEU: return this.create(pr, r);
      case Act.DESTROY: return this.destroy(pr, r);
      case Act.CLEAR: return this.clear(pr, r);
      case Act.CLEARED: return this.cleared(pr, r);
      case Act.GLOBAL: {
        const pool = pr.pools.get(r.pool);
        if (!pool || !pool.live) this.createPool(pr, r.pool, 0, 'global', this.siteStack(pr, r.site));
        return;
      }
      case Act.OWNER:
      case Act.THREAD:
        if (this.threadLines++ === 0) this.firstThread = `line ${this.lineNo}: pid ${showNumber(r.pid)} pool 0x${r.pool.toString(16)} at ${r.site}`;
        return;
      default: return; // LIFE: a lifetime check, nothing changes
    }
  }

  private createPool(pr: Proc, addr: number, parent: number, tag: string, stack: number): Pool {
    if (!pr.announced) this.announce(pr, this.rec);
    const pool: Pool = { addr, parent, tag, size: 0, live: true };
    pr.pools.set(addr, pool);
    this.link(pr, addr, parent);
    this.emit({ kind: 'pool-create', pid: pr.pid, t: pr.t, tid: this.rec.tid, pool: addr, parent, poolKind: 'apr', tag, stack });
    return pool;
  }

  /** Records a child under its parent. A parent never seen itself becomes a phantom: the
   *  consumer makes such a parent implicitly when the child is created, so we must not create it
   *  again later (that would end the children); its own first line only names and sizes it. */
  private link(pr: Proc, addr: number, parent: number): void {
    let set = pr.children.get(parent);
    if (!set) { set = new Set(); pr.children.set(parent, set); }
    set.add(addr);
    if (parent !== 0 && !pr.pools.get(parent)?.live) {
      pr.pools.set(parent, { addr: parent, parent: 0, tag: '', size: 0, live: true, phantom: true });
    }
  }

  /** A phantom pool's first own line: its tag and bytes become known. */
  private materialize(pr: Proc, pool: Pool, r: Rec): void {
    pool.phantom = false;
    pool.parent = r.parent;
    if (r.act !== Act.GLOBAL && r.act < Act.LIFE) this.retag(pr, pool, r.tag);
    // Its bytes so far predate the log (see implicitPool): a silent baseline.
    pool.size = r.size;
  }

  /** A pool first seen without its CREATE line (created before the log starts, or in the process
   *  this one forked from). The bytes it already holds predate the log: they have no site and no
   *  time, and announcing them when first met would draw growth that never happened (a pool met
   *  late, e.g. the process pool at shutdown). They become the silent baseline; only changes from
   *  here on are events. A brand-new pool (its first allocation) starts from zero as usual. */
  private implicitPool(pr: Proc, r: Rec): Pool {
    const pool = this.createPool(pr, r.pool, r.parent, r.tag, 0);
    const fresh = (r.act === Act.PALLOC || r.act === Act.PCALLOC) && r.total === 1 && r.clears === 0;
    if (!fresh) pool.size = r.size;
    return pool;
  }

  /** The live pool of a line, creating it implicitly if needed; resolves a waiting pool. */
  private livePool(pr: Proc, r: Rec): Pool {
    const pool = pr.pools.get(r.pool);
    if (pool?.live) {
      if (pool.pending) this.flushPending(pr, pool, undefined);
      if (pool.phantom) this.materialize(pr, pool, r);
      return pool;
    }
    return this.implicitPool(pr, r);
  }

  private flushPending(pr: Proc, pool: Pool, create: Rec | undefined): void {
    const waiting = pool.pending!;
    pool.pending = undefined;
    const first = waiting[0]!;
    const c = create ?? first;
    if (!pr.announced) this.announce(pr, c);
    pool.parent = c.parent;
    pool.tag = c.tag;
    this.link(pr, pool.addr, c.parent);
    this.emit({ kind: 'pool-create', pid: pr.pid, t: pr.t, tid: c.tid, pool: pool.addr, parent: c.parent, poolKind: 'apr', tag: c.tag,
      stack: create ? this.siteStack(pr, create.site) : 0 });
    for (const w of waiting) {
      const delta = w.size - pool.size;
      if (delta >= 0) this.emit({ kind: 'pool-alloc', pid: pr.pid, t: pr.t, tid: w.tid, pool: pool.addr, size: delta, addr: 0, stack: this.siteStack(pr, w.site) });
      else this.emit({ kind: 'pool-size', pid: pr.pid, t: pr.t, pool: pool.addr, bytes: w.size });
      pool.size = w.size;
    }
  }

  /** Bytes that appeared without a PALLOC line are an unlogged allocation; a drop is a size correction. */
  private syncSize(pr: Proc, pool: Pool, r: Rec): void {
    const delta = r.size - pool.size;
    if (delta > 0) this.emit({ kind: 'pool-alloc', pid: pr.pid, t: pr.t, tid: r.tid, pool: pool.addr, size: delta, addr: 0, stack: this.unloggedStack(pr) });
    else if (delta < 0) this.emit({ kind: 'pool-size', pid: pr.pid, t: pr.t, pool: pool.addr, bytes: r.size });
    pool.size = r.size;
  }

  private retag(pr: Proc, pool: Pool, tag: string): void {
    if (tag !== pool.tag) {
      pool.tag = tag;
      this.emit({ kind: 'pool-tag', pid: pr.pid, t: pr.t, pool: pool.addr, tag });
    }
  }

  private alloc(pr: Proc, r: Rec): void {
    // Runs of lines on one pool are the common case: a one-entry cache saves the map lookup.
    let pool = pr.lastPool;
    if (!pool || pool.addr !== r.pool || !pool.live) pool = pr.pools.get(r.pool);
    if (!pool || !pool.live) {
      if (r.parent === 0 && r.total <= MAX_PENDING && r.clears === 0) {
        pool = { addr: r.pool, parent: 0, tag: r.tag, size: 0, live: true, pending: [(r as LineRec).snapshot()] };
        pr.pools.set(r.pool, pool);
        return;
      }
      this.implicitPool(pr, r);
      return;
    }
    if (pool.pending) {
      if (pool.pending.length < MAX_PENDING && r.parent === 0) { pool.pending.push((r as LineRec).snapshot()); return; }
      this.flushPending(pr, pool, undefined);
    }
    if (pool.phantom) {
      if (!pr.announced) this.announce(pr, r);
      this.materialize(pr, pool, r);
      return;
    }
    if (!pr.announced) this.announce(pr, r);
    pr.lastPool = pool;
    const lr = r as LineRec;
    if (!pool.tagBytes || !sameBytes(pool.tagBytes, lr.buf, lr.tagS, lr.tagE)) {
      this.retag(pr, pool, lr.tag);
      pool.tagBytes = Buffer.from(lr.buf.subarray(lr.tagS, lr.tagE));
    }
    const delta = r.size - pool.size;
    if (delta >= 0) this.emit({ kind: 'pool-alloc', pid: pr.pid, t: pr.t, tid: r.tid, pool: pool.addr, size: delta, addr: 0, stack: this.lineSiteStack(pr, lr) });
    else this.emit({ kind: 'pool-size', pid: pr.pid, t: pr.t, pool: pool.addr, bytes: r.size });
    pool.size = r.size;
  }

  private create(pr: Proc, r: Rec): void {
    const old = pr.pools.get(r.pool);
    if (old?.live && old.pending) {
      this.flushPending(pr, old, r);
      this.syncSize(pr, old, r);
      return;
    }
    // A live pool at this address was freed without our seeing it (a cut log): end it first.
    if (old?.live) this.destroyTree(pr, old, 0);
    const pool = this.createPool(pr, r.pool, r.parent, r.tag, this.siteStack(pr, r.site));
    this.syncSize(pr, pool, r);
  }

  /** Is this line's pool one whose bytes we have followed (not first met on this line)? */
  private followed(pr: Proc, r: Rec): boolean {
    const pool = pr.pools.get(r.pool);
    return !!pool?.live && !pool.phantom;
  }

  private destroy(pr: Proc, r: Rec): void {
    const followed = this.followed(pr, r);
    const pool = this.livePool(pr, r);
    if (followed) this.syncSize(pr, pool, r);
    this.destroyTree(pr, pool, this.siteStack(pr, r.site));
    this.pushOp(pr, r);
  }

  private clear(pr: Proc, r: Rec): void {
    const followed = this.followed(pr, r);
    const pool = this.livePool(pr, r);
    if (followed) this.syncSize(pr, pool, r);
    this.retag(pr, pool, r.tag);
    const stack = this.siteStack(pr, r.site);
    this.destroyChildren(pr, pool.addr, stack);
    this.emit({ kind: 'pool-clear', pid: pr.pid, t: pr.t, pool: pool.addr, stack });
    pool.size = 0;
    this.pushOp(pr, r);
  }

  private pushOp(pr: Proc, r: Rec): void {
    if (pr.ops.length >= 64) pr.ops.shift();
    pr.ops.push({ addr: r.pool, site: r.site });
  }

  private cleared(pr: Proc, r: Rec): void {
    const pool = pr.pools.get(r.pool);
    // The pool's own CLEARED closes its operation (and any left open inside it).
    for (let i = pr.ops.length - 1; i >= 0; i--) {
      if (pr.ops[i]!.addr === r.pool) {
        pr.ops.length = i;
        if (pool?.live) pool.size = r.size;
        return;
      }
    }
    if (!pool || !pool.live) return; // a descendant already destroyed with its ancestor
    if (pool.pending) this.flushPending(pr, pool, undefined);
    const top = pr.ops[pr.ops.length - 1];
    if (top && top.site === r.site) {
      // A descendant we did not know was one (its link predates the log): destroyed with it.
      this.destroyTree(pr, pool, this.siteStack(pr, r.site));
      return;
    }
    // CLEARED without its CLEAR (the log was cut just before): the clear happened.
    const stack = this.siteStack(pr, r.site);
    this.destroyChildren(pr, pool.addr, stack);
    this.emit({ kind: 'pool-clear', pid: pr.pid, t: pr.t, pool: pool.addr, stack });
    pool.size = r.size;
  }

  private destroyChildren(pr: Proc, addr: number, stack: number): void {
    const kids = pr.children.get(addr);
    if (!kids) return;
    pr.children.delete(addr);
    for (const k of kids) {
      if (k === addr) continue; // a pool logged as its own parent is not its own child
      const child = pr.pools.get(k);
      if (child?.live && child.parent === addr) this.destroyTree(pr, child, stack);
    }
  }

  /** Destroys a pool after its descendants, innermost first, each exactly once (a tree as deep as
   *  the log makes it, or one that loops, walked without recursion). */
  private destroyTree(pr: Proc, pool: Pool, stack: number): void {
    postOrder(pool, (n) => this.enterForDestroy(pr, n), (n) => {
      n.live = false;
      pr.children.get(n.parent)?.delete(n.addr);
      pr.pools.delete(n.addr);
      this.emit({ kind: 'pool-destroy', pid: pr.pid, t: pr.t, pool: n.addr, stack });
    });
  }

  /** A pool about to be destroyed: its waiting lines are settled, and its live children follow. */
  private *enterForDestroy(pr: Proc, pool: Pool): Iterable<Pool> {
    if (pool.pending) this.flushPending(pr, pool, undefined);
    const kids = pr.children.get(pool.addr);
    if (!kids) return;
    pr.children.delete(pool.addr);
    for (const k of kids) {
      const child = pr.pools.get(k);
      if (child?.live && child.parent === pool.addr) yield child;
    }
  }

  finish(): SourceStats {
    for (const pr of this.procs.values()) {
      for (const pool of pr.pools.values()) if (pool.live && pool.pending) this.flushPending(pr, pool, undefined);
    }
    if (this.procs.size === 0 && this.stats.badRecords === 0) {
      this.stats.warnings.push('no "POOL DEBUG:" lines found: is this the log of an APR built with --enable-pool-debug (httpd error_log or APR_POOL_DEBUG_LOG)?');
    } else if (this.skipped) this.stats.warnings.push(`skipped ${this.skipped} line(s) that are not pool-debug events (the server's own log lines)`);
    if (this.threadLines) this.stats.warnings.push(`${this.threadLines} pool ownership warning(s) (THREAD/OWNER lines), first ${this.firstThread}`);
    this.stats.skipped = this.skipped;
    return this.stats;
  }
}

export const aprLogSource: Source = {
  name: 'apr-log',
  description: 'APR pool-debug log (APR built --enable-pool-debug; httpd error_log with "POOL DEBUG:" lines)',
  detect(head: Buffer): number {
    const text = head.toString('latin1');
    const i = text.indexOf('POOL DEBUG: [');
    if (i < 0) return 0;
    return i === 0 || text[i - 1] === '\n' ? 0.95 : 0.5;
  },
  meta(input: SourceInput): TraceMeta {
    return { format: FORMAT_VERSION, clock: 'seq', source: 'apr-log', command: input.path };
  },
  async read(input: SourceInput, sink: EventSink): Promise<SourceStats> {
    const dec = new AprLogDecoder(sink);
    return decodeLines(input, dec);
  },
};
