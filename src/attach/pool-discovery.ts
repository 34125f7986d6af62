// Finds the pools that were alive before the trace began, by reading the traced process's own
// pool structures as its allocator profile describes them (`discover`, docs/allocator-profiles.md):
// a pool tree walked through its parent/child/sibling links (APR), and pools reachable from
// global symbols (httpd's ap_pglobal, nginx's ngx_cycle: its pool and its open connections').
// Nothing here knows an allocator: offsets, roots and checks are the profile's data.
//
// The process runs while it is read, so every pool is checked before it is taken: its memory
// must pass the profile's `sane` checks and, in a tree, its links must agree (its parent field
// names the pool it was reached from, and the link that points at it is where its `backref`
// says). A pool being destroyed or garbage fails these and is left out.

import { ElfFile } from '../symbols/elf.js';
import { ProcMem, u64At } from '../proc/memory.js';
import type { DiscoveryRoot, PoolDiscovery } from './profile.js';
import { exeOf, runningFile } from '../proc/processes.js';
import { findLibrary, readMaps, type Mapping } from '../proc/maps.js';

export interface FoundPool {
  pool: number;
  /** 0: a root, or a parent the walk could not place. */
  parent: number;
  tag: string;
}

/** What the caller knows: pools it has heard of (created or found) and pools it saw destroyed. */
export interface PoolSet {
  known(pool: number): boolean;
  dead(pool: number): boolean;
}

/** The cost of the walks so far (what `leakscope attach` and the bench report). */
export interface WalkCost {
  walks: number;
  found: number;
  /** Pools whose memory failed the checks (being destroyed, or not pools). */
  rejected: number;
  reads: number;
  bytes: number;
  ms: number;
}

/** A walk stops here: no server has this many pools, and garbage links must not run forever. */
export const MAX_WALK = 1 << 18;
const MAX_DEPTH = 256;
const MAX_ARRAY = 1 << 20;
const TAG_BYTES = 64;

interface Header {
  parent: number;
  child: number;
  sibling: number;
  backref: number;
  tagPtr: number;
}

export class PoolDiscoverer {
  readonly cost: WalkCost = { walks: 0, found: 0, rejected: 0, reads: 0, bytes: 0, ms: 0 };
  private readonly header: Buffer;
  private readonly headerLen: number;
  private readonly tags = new Map<number, string>();
  private readonly tagBuf = Buffer.alloc(TAG_BYTES);
  private roots: { root: DiscoveryRoot; addr: number }[] | undefined;

  constructor(readonly mem: ProcMem, readonly spec: PoolDiscovery) {
    const t = spec.tree;
    const offs = [t?.parent, t?.child, t?.sibling, t?.backref, spec.tag, ...(spec.sane ?? []).map((c) => c.offset)].filter((o): o is number => o !== undefined);
    this.headerLen = Math.max(0, ...offs) + 8;
    this.header = Buffer.alloc(this.headerLen);
  }

  /** Pools reachable from the profile's roots that the caller does not know yet, parents first. */
  fromRoots(set: PoolSet): FoundPool[] {
    return this.timed(() => {
      const out: FoundPool[] = [];
      for (const { root, addr } of this.resolveRoots()) {
        if (root.path) {
          const pool = this.follow(addr, root.path);
          if (pool) this.around(pool, set, out, root.name);
        } else if (root.array) this.fromArray(addr, root, set, out);
      }
      return out;
    });
  }

  /** `pool` and, in a tree, its ancestors not known yet with all their descendants, parents
   *  first; [] when its memory does not pass for a pool (then nothing is known of it). */
  from(pool: number, set: PoolSet): FoundPool[] {
    return this.timed(() => {
      const out: FoundPool[] = [];
      this.around(pool, set, out, '');
      return out;
    });
  }

  private timed(f: () => FoundPool[]): FoundPool[] {
    const t0 = process.hrtime.bigint();
    const r0 = this.mem.reads;
    const b0 = this.mem.bytes;
    const out = f();
    this.cost.walks++;
    this.cost.found += out.length;
    this.cost.reads += this.mem.reads - r0;
    this.cost.bytes += this.mem.bytes - b0;
    this.cost.ms += Number(process.hrtime.bigint() - t0) / 1e6;
    return out;
  }

  private around(pool: number, set: PoolSet, out: FoundPool[], rootName: string): void {
    if (set.known(pool) || set.dead(pool)) return;
    if (!this.spec.tree) {
      if (this.read(pool)) out.push({ pool, parent: 0, tag: rootName });
      return;
    }
    // Up to the first pool the caller knows (or the tree's root), every link checked...
    const chain: number[] = [];
    let anchor = 0;
    let cur = pool;
    for (let depth = 0; ; depth++) {
      if (depth >= MAX_DEPTH || set.dead(cur) || chain.includes(cur)) return;
      const h = this.read(cur);
      if (!h || !this.linked(cur, h)) return;
      chain.push(cur);
      if (h.parent === 0) break;
      if (set.known(h.parent)) {
        anchor = h.parent;
        break;
      }
      cur = h.parent;
    }
    // ...then down from the highest pool not known: it and all its descendants.
    this.subtree(chain[chain.length - 1]!, anchor, set, out, rootName);
  }

  /** A tree pool's links agree: its back-reference points at a word holding the pool (a root has none). */
  private linked(pool: number, h: Header): boolean {
    if (this.spec.tree?.backref === undefined) return true;
    if (h.parent === 0) return h.backref === 0;
    return h.backref !== 0 && this.mem.u64(h.backref) === pool;
  }

  private subtree(top: number, parent: number, set: PoolSet, out: FoundPool[], rootName: string): void {
    const tree = this.spec.tree!;
    const first = this.read(top);
    if (!first) return;
    out.push({ pool: top, parent, tag: this.tag(first.tagPtr) || rootName });
    const seen = new Set<number>([top]);
    const stack: { pool: number; child: number }[] = [{ pool: top, child: first.child }];
    while (stack.length > 0 && seen.size < MAX_WALK) {
      const { pool: p, child } = stack.pop()!;
      let link = p + tree.child;
      for (let c = child; c !== 0 && seen.size < MAX_WALK; ) {
        const h = seen.has(c) ? undefined : this.read(c);
        // a child whose links disagree ends this sibling list: past it nothing can be trusted
        if (!h || h.parent !== p || (tree.backref !== undefined && h.backref !== link)) {
          this.cost.rejected++;
          break;
        }
        seen.add(c);
        if (!set.dead(c)) {
          if (!set.known(c)) out.push({ pool: c, parent: p, tag: this.tag(h.tagPtr) });
          stack.push({ pool: c, child: h.child });
        }
        link = c + tree.sibling;
        c = h.sibling;
      }
    }
  }

  /** The pool's header, when its memory can be read and passes the profile's checks. */
  private read(pool: number): Header | undefined {
    const b = this.header;
    if (!this.mem.readInto(pool, b, this.headerLen)) {
      this.cost.rejected++;
      return undefined;
    }
    for (const c of this.spec.sane ?? []) {
      const v = u64At(b, c.offset);
      const d = v - pool;
      if (v === 0 || d < c.min || d > c.max) {
        this.cost.rejected++;
        return undefined;
      }
    }
    const t = this.spec.tree;
    return {
      parent: t ? u64At(b, t.parent) : 0,
      child: t ? u64At(b, t.child) : 0,
      sibling: t ? u64At(b, t.sibling) : 0,
      backref: t?.backref !== undefined ? u64At(b, t.backref) : 0,
      tagPtr: this.spec.tag !== undefined ? u64At(b, this.spec.tag) : 0,
    };
  }

  /** A live pool's tag read from its memory ('' when it has none), undefined when the pool
   *  cannot be read or fails the profile's checks. */
  tagOf(pool: number): string | undefined {
    const h = this.read(pool);
    return h ? this.tag(h.tagPtr) : undefined;
  }

  /** The tag string a pool points at ('' when none or unreadable); tags are shared literals, read once. */
  private tag(ptr: number): string {
    if (ptr === 0) return '';
    const cached = this.tags.get(ptr);
    if (cached !== undefined) return cached;
    // a string near the end of a mapping: read only to the end of its page
    const len = Math.min(TAG_BYTES, 4096 - (ptr % 4096));
    let s = '';
    if (this.mem.readInto(ptr, this.tagBuf, len)) {
      const end = this.tagBuf.indexOf(0);
      const raw = this.tagBuf.toString('utf8', 0, end < 0 ? len : end);
      // what is not text is no tag (a pointer into freed or reused memory)
      s = /^[\x20-\x7e\u00a0-\uffff]*$/.test(raw) && !raw.includes('\ufffd') ? raw : '';
    }
    this.tags.set(ptr, s);
    return s;
  }

  /** From `addr`, each step reads the word at address + step; 0 when a read fails or gives 0. */
  private follow(addr: number, path: number[]): number {
    let a = addr;
    for (const step of path) {
      const v = this.mem.u64(a + step);
      if (!v) return 0;
      a = v;
    }
    return a;
  }

  private fromArray(addr: number, root: DiscoveryRoot, set: PoolSet, out: FoundPool[]): void {
    const a = root.array!;
    const base = this.follow(addr, a.path);
    const count = this.follow(addr, a.count);
    if (!base || count <= 0 || count > MAX_ARRAY) return;
    const chunk = Buffer.alloc(Math.min(count, 1024) * a.stride);
    for (let i = 0; i < count; i += 1024) {
      const n = Math.min(1024, count - i);
      if (!this.mem.readInto(base + i * a.stride, chunk, n * a.stride)) return;
      for (let k = 0; k < n; k++) {
        const o = k * a.stride;
        if (a.skip && chunk.readInt32LE(o + a.skip.offset) === a.skip.i32) continue;
        const pool = u64At(chunk, o + a.pool);
        if (pool) this.around(pool, set, out, root.name);
      }
    }
  }

  /** The roots' symbols as addresses in this process (read once: globals do not move). */
  private resolveRoots(): { root: DiscoveryRoot; addr: number }[] {
    if (this.roots) return this.roots;
    const maps = readMaps(this.mem.pid);
    const exe = exeOf(this.mem.pid);
    this.roots = [];
    for (const root of this.spec.roots ?? []) {
      const addr = symbolInProcess(this.mem.pid, maps, exe, root.in, root.symbol);
      if (addr !== undefined) this.roots.push({ root, addr });
    }
    return this.roots;
  }

  /** Names of the roots found in this process (what `doctor` reports). */
  rootNames(): string[] {
    return this.resolveRoots().map((r) => `${r.root.name} (${r.root.symbol})`);
  }
}

/** Where a module's symbol is in a running process: its address in the file plus the module's
 *  load bias (from the mapping of the file's loadable segment). */
export function symbolInProcess(pid: number, maps: Mapping[], exe: string | undefined, where: string, symbol: string): number | undefined {
  const path = where === 'exe' ? exe : findLibrary(maps, where);
  if (!path) return undefined;
  let elf: ElfFile | undefined;
  try {
    // the exe through /proc: the very file it runs, even if replaced on disk since
    elf = ElfFile.open(where === 'exe' ? runningFile(pid) : path);
    const vaddr = elf.symbolAddress(symbol);
    if (vaddr === undefined) return undefined;
    const loads = elf.loads();
    for (const m of maps) {
      if (m.path.replace(/ \(deleted\)$/, '') !== path) continue;
      const seg = loads.find((l) => m.offset >= l.offset && m.offset < l.offset + Math.max(l.filesz, 1));
      if (!seg) continue;
      return m.start - (seg.vaddr + (m.offset - seg.offset)) + vaddr;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    elf?.close();
  }
}

/** A profile's `checks`: does the allocator's code still read the layout the profile gives? */
export function layoutChecks(spec: PoolDiscovery, pathOf: (where: string) => string | undefined): { says: string; ok: boolean; why: string }[] {
  const out: { says: string; ok: boolean; why: string }[] = [];
  for (const c of spec.checks ?? []) {
    const path = pathOf(c.in);
    if (!path) {
      out.push({ says: c.says, ok: false, why: `${c.in} is not there` });
      continue;
    }
    let elf: ElfFile | undefined;
    try {
      elf = ElfFile.open(path);
      const at = elf.symbolAddress(c.symbol);
      const got = at === undefined ? '' : elf.bytesAt(at, c.code.length / 2).toString('hex');
      out.push({ says: c.says, ok: got === c.code, why: at === undefined ? `${c.symbol} is not in ${path}` : got === c.code ? `${c.symbol} in ${path}` : `${c.symbol} in ${path} starts ${got}, not ${c.code}` });
    } catch (err) {
      out.push({ says: c.says, ok: false, why: `${path}: ${(err as Error).message}` });
    } finally {
      elf?.close();
    }
  }
  return out;
}
