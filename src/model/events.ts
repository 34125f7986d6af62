// The canonical event model. Every source produces these; the engine consumes them.
//
// Conventions (they keep the hot path cheap and the model source-agnostic):
// - `pid` is the process the event belongs to; `tid` the thread when the source knows it (else 0).
// - `t` is time in the trace's clock (see TraceMeta.clock): nanoseconds since the trace start,
//   or an event sequence number when the source has no clock (APR pool-debug logs).
// - Addresses and sizes are plain numbers: user-space addresses fit in 48 bits, far below 2^53.
// - `stack` is an interned stack id (see stacks.ts); 0 means "no stack known".
// - Pools are identified by (pid, pool address); `parent` 0 means a root pool.

export type Clock = 'ns' | 'seq';

export interface TraceMeta {
  /** Trace format version written by this code. */
  format: number;
  /** 'ns': t is nanoseconds since startWallMs; 'seq': t is an event sequence number. */
  clock: Clock;
  /** Wall-clock time (ms since the epoch) of t = 0, when known. */
  startWallMs?: number;
  /** CLOCK_MONOTONIC (ns, decimal string) at t = 0 for 'ns' clocks, so that other live writers
   *  (`leakscope mark`, BPF timestamps) can place events on the same timeline. */
  startMonoNs?: string;
  /** What produced the events: 'recorder', 'attach', 'apr-log', 'nginx-log', 'valgrind', 'heaptrack', ... */
  source: string;
  /** The traced command line or the input file(s). */
  command?: string;
  hostname?: string;
  /** Sampling: allocations were recorded with probability 1 - exp(-size / sampleBytes). */
  sampleBytes?: number;
}

interface Base {
  pid: number;
  t: number;
}

// --- process lifecycle -------------------------------------------------------------------
export interface ProcessStartEvent extends Base { kind: 'process'; ppid: number; command: string; exe: string }
/** Emitted for the child: `pid` is the new process, `parentPid` the one it was forked from.
 *  The child inherits the parent's frame and stack definitions. */
export interface ForkEvent extends Base { kind: 'fork'; parentPid: number }
/** The process replaced its image: its heap and pools are gone, definitions start afresh. */
export interface ExecEvent extends Base { kind: 'exec'; exe: string; command: string }
export interface ExitEvent extends Base { kind: 'exit'; code: number }

// --- heap ---------------------------------------------------------------------------------
export interface AllocEvent extends Base { kind: 'alloc'; tid: number; addr: number; size: number; stack: number }
export interface FreeEvent extends Base { kind: 'free'; tid: number; addr: number }
/** realloc(oldAddr, size) returned addr. oldAddr 0 = malloc; size 0 with addr 0 = free. */
export interface ReallocEvent extends Base { kind: 'realloc'; tid: number; oldAddr: number; addr: number; size: number; stack: number }

// --- pools --------------------------------------------------------------------------------
export interface PoolCreateEvent extends Base {
  kind: 'pool-create'; tid: number; pool: number; parent: number;
  /** Allocator family: 'nginx', 'apr', 'luajit' or a user profile's name. */
  poolKind: string;
  tag: string; stack: number;
}
/** Releases the pool's allocations and destroys its children (recursively). */
export interface PoolDestroyEvent extends Base { kind: 'pool-destroy'; pool: number; stack: number }
/** Clear/reset: releases the pool's allocations and destroys its children; the pool lives on. */
export interface PoolClearEvent extends Base { kind: 'pool-clear'; pool: number; stack: number }
/** An allocation carved from a pool. addr 0 when the source does not know it. */
export interface PoolAllocEvent extends Base { kind: 'pool-alloc'; tid: number; pool: number; size: number; addr: number; stack: number }
/** An early release of one pool allocation (ngx_pfree of a large block). */
export interface PoolFreeEvent extends Base { kind: 'pool-free'; pool: number; addr: number }
export interface PoolTagEvent extends Base { kind: 'pool-tag'; pool: number; tag: string }
export interface PoolCleanupEvent extends Base { kind: 'pool-cleanup'; pool: number; action: 'add' | 'run'; handler: number }
/** A measured size of a live pool (read from the pool's own structure), for sources that do
 *  not see each allocation. Replaces what the engine knows of the pool's own bytes. */
export interface PoolSizeEvent extends Base { kind: 'pool-size'; pool: number; bytes: number }
/** A pool that was alive before the trace began (its creation was never seen), found by reading
 *  the process's own pool structures (`attach`'s discovery walk): its place in the tree and its
 *  tag. It is live from `t` on but not counted as created; its size comes from `pool-size`. */
export interface PoolFoundEvent extends Base { kind: 'pool-found'; pool: number; parent: number; poolKind: string; tag: string }

// --- mappings and the kernel side --------------------------------------------------------
export interface MmapEvent extends Base { kind: 'mmap'; tid: number; addr: number; size: number; prot: number; flags: number; stack: number }
export interface MunmapEvent extends Base { kind: 'munmap'; addr: number; size: number }
export interface BrkEvent extends Base { kind: 'brk'; addr: number }
export type ShmOp = 'get' | 'attach' | 'detach' | 'remove';
export interface ShmEvent extends Base { kind: 'shm'; op: ShmOp; id: number; addr: number; size: number }
export interface RssEvent extends Base { kind: 'rss'; bytes: number }
/** Kernel-wide happenings (OOM kill, direct reclaim stall) that concern a pid or the machine (pid 0). */
export interface KernelEvent extends Base { kind: 'kernel'; what: string; value: number }

// --- markers, losses, symbol tables ----------------------------------------------------------
/** A user's label at a point in time; pid 0 = for every process. */
export interface MarkerEvent extends Base { kind: 'marker'; label: string }
/** A source dropped `count` events (full buffers, unparseable lines...). */
export interface LostEvent extends Base { kind: 'lost'; count: number; reason: string }
/** A mapped module (executable or shared library), so addresses can be symbolized later. */
export interface ModuleEvent extends Base { kind: 'module'; base: number; size: number; offset: number; path: string; buildId: string }
/** Defines (or re-defines, e.g. after symbolization) frame `id` of process `pid`. */
export interface FrameDefEvent extends Base { kind: 'frame'; id: number; frame: Frame }
/** Defines stack `id` of process `pid` as frame `frame` called from stack `parent` (0 = root). */
export interface StackDefEvent extends Base { kind: 'stack'; id: number; parent: number; frame: number }

export type Event =
  | ProcessStartEvent | ForkEvent | ExecEvent | ExitEvent
  | AllocEvent | FreeEvent | ReallocEvent
  | PoolCreateEvent | PoolDestroyEvent | PoolClearEvent | PoolAllocEvent | PoolFreeEvent
  | PoolTagEvent | PoolCleanupEvent | PoolSizeEvent | PoolFoundEvent
  | MmapEvent | MunmapEvent | BrkEvent | ShmEvent | RssEvent | KernelEvent
  | MarkerEvent | LostEvent | ModuleEvent | FrameDefEvent | StackDefEvent;

export type EventKind = Event['kind'];

/**
 * A frame is whatever a source knows of a code location: an address in a module (to be
 * symbolized), a symbol, a file:line, or a bare call site as logs give it (`mod_leaky.c:25`).
 */
export interface Frame {
  /** Absolute instruction address, 0 when unknown. */
  pc: number;
  /** Path of the module holding pc, '' when unknown. */
  module: string;
  /** Function name (demangled), '' when unknown. */
  fn: string;
  file: string;
  /** 0 when unknown. */
  line: number;
  /** This frame was inlined into the next (outer) frame of the stack. */
  inlined: boolean;
  /** The address in the module's ELF file (what addr2line and gdb take), set by the symbolizer
   *  when it could name nothing there: a label then shows it instead of the run's absolute pc. */
  vaddr?: number;
}

/** Receives events in file/stream order. Sources write to it; the engine and the trace writer are sinks. */
export interface EventSink {
  event(e: Event): void;
}

/**
 * Optional fast path for the commonest events: a sink that also has these methods (the engine)
 * is called with the fields directly, without an Event object per record, by the readers that
 * know of it (`readTrace`, the heaptrack source). Each call must do exactly what `event()` does
 * with the equivalent event. Every other sink keeps receiving `event()` only.
 */
export interface FastEventSink extends EventSink {
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void;
  free(pid: number, tid: number, t: number, addr: number): void;
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void;
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void;
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void;
  poolDestroy(pid: number, t: number, pool: number, stack: number): void;
  /** Optional: an allocation freed before anything else happened in its process (heaptrack's
   *  "temporary" allocations). Counted as allocated and freed; never live, so it costs no
   *  live-table entry and no series points (only the series' peaks see it). `count` such
   *  allocations of one site at once (default 1). */
  transient?(pid: number, tid: number, t: number, size: number, stack: number, count?: number): void;
}

/** The sink's fast path, when it has one. */
export function fastSink(sink: EventSink): FastEventSink | undefined {
  const s = sink as Partial<FastEventSink>;
  return typeof s.alloc === 'function' && typeof s.free === 'function' && typeof s.realloc === 'function' &&
    typeof s.poolAlloc === 'function' && typeof s.poolCreate === 'function' && typeof s.poolDestroy === 'function'
    ? (sink as FastEventSink)
    : undefined;
}

export function frame(partial: Partial<Frame>): Frame {
  return { pc: 0, module: '', fn: '', file: '', line: 0, inlined: false, ...partial };
}

/** A short human name for a frame: `fn (file:line)`, `file:line`, `fn`, or `module+0xoff`. */
export function frameLabel(f: Frame): string {
  const where = f.file ? (f.line ? `${f.file}:${f.line}` : f.file) : '';
  if (f.fn) return where ? `${f.fn} (${where})` : f.fn;
  if (where) return where;
  return addressLabel(f);
}

/** A frame by its address: `module+0xvaddr` once the symbolizer knows the file address, else
 *  `module+0xpc` / `0xpc`; '??' without one. */
export function addressLabel(f: Frame): string {
  if (f.module && f.vaddr !== undefined) return `${basename(f.module)}+0x${f.vaddr.toString(16)}`;
  if (f.pc) return f.module ? `${basename(f.module)}+0x${f.pc.toString(16)}` : `0x${f.pc.toString(16)}`;
  return '??';
}

function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}
