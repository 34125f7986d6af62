// The kernel side of a tracing session: mappings, brk and SysV shared memory of the targets
// (filtered by pid inside the BPF program, children included), their RSS sampled from /proc,
// optional page-fault counts, and machine-wide OOM kills and direct-reclaim stalls, all as
// model events on the trace's clock. Used by `leakscope kernel` and `leakscope attach --kernel`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Event, EventSink } from '../model/events.js';
import { StackInterner } from '../model/stacks.js';
import { kstackAvailable, parseKstackLine, startKstack, type Kstack } from './kstack.js';
import { ModuleMaps } from '../proc/modules.js';
import { monoNowNs, traceTime } from './clock.js';
import { exitCodeOf, parseKernelLine, type KernelRecord } from './parse.js';
import { residentBytes } from '../proc/rss.js';
import { kernelScript } from './script.js';
import { descendants, isThreadOf, processInfo } from '../proc/processes.js';
import { ensureTracefs } from './tracefs.js';

export interface KernelTraceOptions {
  sink: EventSink;
  /** CLOCK_MONOTONIC ns at the trace's t = 0 (TraceMeta.startMonoNs). */
  startMonoNs: bigint;
  /** Target processes; their descendants, now and later, are traced too. */
  pids?: number[];
  /** Processes that exec this executable (absolute path) become targets. */
  exe?: string;
  /** RSS sampling period (default 1000 ms; 0 = none). */
  rssIntervalMs?: number;
  /** Count user page faults per target, reported every faultIntervalMs (default 1000). */
  faults?: boolean;
  faultIntervalMs?: number;
  /** OOM kills and direct-reclaim stalls anywhere on the machine (default true). */
  machine?: boolean;
  /** Emit process/fork/exec/exit events (default true; attach, which has its own, turns it off). */
  lifecycle?: boolean;
  /** mmap events with whole user stacks from native/unwind's ls-kstack (default: when built). */
  mmapStacks?: boolean;
  /** Interns the stacks; pass the session's own so that ids do not collide (attach --kernel). */
  interner?: StackInterner;
  /** Emit module events for the modules mmap stacks run through (default true; a session that
   *  reports modules itself turns it off). */
  modules?: boolean;
  /** The bpftrace binary (default: found on PATH). */
  bpftrace?: string;
  onWarning?: (msg: string) => void;
}

export interface KernelTraceStats {
  events: number;
  /** Events dropped (bpftrace's buffers full); each is also a `lost` event in the trace. */
  lost: number;
  /** mmaps whose stack was dropped (ls-kstack's ring buffer full): they have their leaf frame only. */
  stacksLost: number;
  warnings: string[];
}

export interface KernelTrace {
  /** Targets alive now. */
  readonly pids: ReadonlySet<number>;
  /** Stops tracing (idempotent); resolves once every event is in the sink. */
  stop(): Promise<KernelTraceStats>;
  /** Resolves when tracing ended: stop(), bpftrace died, or (without `exe`) every target exited. */
  readonly finished: Promise<KernelTraceStats>;
}

export class KernelTraceError extends Error {}

const EXE_MAX = 199; // bpftrace 0.17's longest string (BPFTRACE_STRLEN <= 200, NUL included)
/** How often stop() repeats its SIGINT until bpftrace has ended (see stop). A repeat is safe at
 *  any time: bpftrace 0.17 runs END with its handler still set, then resets SIGINT to the default
 *  and prints its maps (seen with strace), so a late repeat can only kill it there, and our END
 *  has already printed everything and cleared every map (script.ts). */
const SIGINT_REPEAT_MS = 1000;

/** Starts tracing; resolves once the probes are attached (events from then on are seen). */
export async function startKernelTrace(o: KernelTraceOptions): Promise<KernelTrace> {
  if (process.getuid?.() !== 0) throw new KernelTraceError('kernel tracing needs root (BPF and tracepoints): run it with sudo');
  const bpftrace = o.bpftrace ?? 'bpftrace';
  const pids = new Set<number>();
  for (const p of o.pids ?? []) {
    if (!Number.isSafeInteger(p) || p <= 0) throw new KernelTraceError(`not a pid: ${p}`);
    if (!processInfo(p)) throw new KernelTraceError(`no process ${p}`);
    pids.add(p);
    for (const d of descendants(p)) if (processInfo(d)) pids.add(d);
  }
  const exes: string[] = [];
  if (o.exe) {
    if (!o.exe.startsWith('/')) throw new KernelTraceError(`executable path must be absolute: ${o.exe}`);
    if (Buffer.byteLength(o.exe) > EXE_MAX) throw new KernelTraceError(`executable path longer than ${EXE_MAX} bytes: bpftrace cannot match it`);
    exes.push(o.exe);
  }
  if (pids.size === 0 && exes.length === 0) throw new KernelTraceError('no target: give pids or an executable');
  const tfs = ensureTracefs();
  if (!tfs.dir) throw new KernelTraceError(`${tfs.error}: mount it with 'mount -t tracefs nodev /sys/kernel/tracing'`);

  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  if (tfs.mounted) warn('mounted tracefs at /sys/kernel/tracing (it was not mounted)');
  const lifecycle = o.lifecycle ?? true;
  const start = o.startMonoNs;
  let events = 0;
  let lost = 0;
  let stacksLost = 0;
  const emit = (e: Event) => {
    events++;
    o.sink.event(e);
  };
  const now = () => traceTime(monoNowNs(), start);

  const initial = [...pids].sort((a, b) => a - b);
  if (lifecycle) {
    for (const p of initial) {
      const info = processInfo(p);
      if (info) emit({ kind: 'process', pid: p, t: now(), ppid: info.ppid, command: info.command, exe: info.exe });
    }
  }
  // mmap with stacks from ls-kstack when it is built (it follows forks and execs of `exe` itself)
  const interner = o.interner ?? new StackInterner(o.sink);
  const modules = new ModuleMaps(o.modules === false ? { event() {} } : o.sink);
  let kstack: Kstack | undefined;
  if ((o.mmapStacks ?? true) && kstackAvailable()) {
    const ks = startKstack(initial, exes[0], (line) => {
      const r = parseKstackLine(line);
      if (!r || r === 'ready') return;
      if ('lost' in r) {
        stacksLost += r.lost; // those mmaps still come, with their leaf frame only
        return;
      }
      const t = traceTime(r.ns, start);
      if (r.parent) modules.inherit(r.pid, r.parent);
      const stack = interner.stackId(modules.frames(r.pid, r.pcs, t, r.modPid), r.pid);
      emit({ kind: 'mmap', pid: r.pid, tid: r.tid, t, addr: r.addr, size: r.size, prot: r.prot, flags: r.flags, stack });
    }, warn);
    try {
      await ks.ready;
      kstack = ks;
    } catch (e) {
      warn(`mmap stacks off: ${(e as Error).message}`);
    }
  }
  const script = kernelScript({
    mmap: !kstack,
    pids: initial.length, exes: exes.length,
    faults: !!o.faults, faultIntervalMs: o.faultIntervalMs ?? 1000,
    machine: o.machine ?? true,
  });
  const child: ChildProcess = spawn(bpftrace, ['-B', 'line', '-e', script, ...initial.map(String), ...exes, String(process.pid)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BPFTRACE_STRLEN: '200', BPFTRACE_MAP_KEYS_MAX: '65536', BPFTRACE_PERF_RB_PAGES: '1024' },
  });

  // RSS of every live target, now and then every interval.
  const sampleRss = () => {
    const t = now();
    for (const p of pids) {
      const bytes = residentBytes(p);
      if (bytes === undefined) continue;
      emit({ kind: 'rss', pid: p, t, bytes });
    }
  };
  let rssTimer: NodeJS.Timeout | undefined;

  let faultT = 0;
  const faultTotals = new Map<number, number>();
  const handle = (r: KernelRecord) => {
    switch (r.type) {
      case 'ready':
        return;
      case 'exec': {
        pids.add(r.pid);
        modules.forget(r.pid);
        const info = processInfo(r.pid);
        if (lifecycle) emit({ kind: 'exec', pid: r.pid, t: traceTime(r.ns, start), exe: info?.exe ?? exes[0] ?? '', command: info?.command ?? '' });
        return;
      }
      case 'fork': {
        // The fork tracepoint also fires for new threads; a thread is in its process's task/.
        if (isThreadOf(r.pid, r.child)) return;
        pids.add(r.child);
        modules.inherit(r.child, r.pid);
        if (lifecycle) emit({ kind: 'fork', pid: r.child, t: traceTime(r.ns, start), parentPid: r.pid });
        return;
      }
      case 'exit':
        if (!pids.has(r.pid)) return;
        pids.delete(r.pid);
        if (lifecycle) emit({ kind: 'exit', pid: r.pid, t: traceTime(r.ns, start), code: exitCodeOf(r.status) });
        if (pids.size === 0 && exes.length === 0) void stop();
        return;
      case 'mmap':
        emit({ kind: 'mmap', pid: r.pid, tid: r.tid, t: traceTime(r.ns, start), addr: r.addr, size: r.size, prot: r.prot, flags: r.flags, stack: 0 });
        return;
      case 'munmap':
        emit({ kind: 'munmap', pid: r.pid, t: traceTime(r.ns, start), addr: r.addr, size: r.size });
        return;
      case 'mremap': {
        // The model has no remap: the old range goes, the new one comes (prot/flags unknown: 0).
        const t = traceTime(r.ns, start);
        emit({ kind: 'munmap', pid: r.pid, t, addr: r.oldAddr, size: r.oldSize });
        emit({ kind: 'mmap', pid: r.pid, tid: r.tid, t, addr: r.addr, size: r.size, prot: 0, flags: 0, stack: 0 });
        return;
      }
      case 'brk':
        emit({ kind: 'brk', pid: r.pid, t: traceTime(r.ns, start), addr: r.addr });
        return;
      case 'shm':
        emit({ kind: 'shm', pid: r.pid, t: traceTime(r.ns, start), op: r.op, id: r.id, addr: r.addr, size: r.size });
        return;
      case 'fault-interval':
        faultT = traceTime(r.ns, start);
        return;
      case 'faults': {
        // bpftrace prints running totals; the event holds the faults since the last report
        const delta = r.count - (faultTotals.get(r.pid) ?? 0);
        faultTotals.set(r.pid, r.count);
        if (delta > 0) emit({ kind: 'kernel', pid: r.pid, t: faultT, what: 'page-faults', value: delta });
        return;
      }
      case 'oom':
        emit({ kind: 'kernel', pid: r.pid, t: traceTime(r.ns, start), what: 'oom-kill', value: r.rssKb * 1024 });
        return;
      case 'reclaim':
        emit({ kind: 'kernel', pid: r.pid, t: traceTime(r.ns, start), what: r.memcg ? 'memcg-reclaim' : 'direct-reclaim', value: r.stallNs });
        return;
      case 'lost':
        lost += r.count;
        emit({ kind: 'lost', pid: 0, t: now(), count: r.count, reason: 'kernel events: bpftrace output buffer full' });
        return;
    }
  };

  let stderr = '';
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  let isReady = false;
  const out = createInterface({ input: child.stdout! });
  const debug = !!process.env.LEAKSCOPE_KERNEL_DEBUG;
  out.on('line', (line) => {
    if (debug) process.stderr.write(`bpftrace> ${line}\n`);
    const r = parseKernelLine(line);
    if (!r) return;
    if (r.type === 'ready' && !isReady) {
      isReady = true;
      resolveReady();
    }
    handle(r);
  });
  const err = createInterface({ input: child.stderr! });
  err.on('line', (line) => {
    const r = parseKernelLine(line);
    if (r?.type === 'lost') return handle(r);
    if (/RLIMIT_MEMLOCK/.test(line)) return; // bpftrace's noise; the kernel charges BPF memory to memcg
    stderr += line + '\n';
    if (isReady && line.trim()) warn(`bpftrace: ${line.trim()}`);
  });
  const closed = new Promise<void>((res) => {
    let n = 0;
    const one = () => { if (++n === 3) res(); };
    out.once('close', one);
    err.once('close', one);
    child.once('close', one);
  });
  child.once('error', (e) => rejectReady(new KernelTraceError(`cannot run bpftrace (${e.message}): install the bpftrace package`)));
  child.once('exit', (code, signal) => {
    if (!isReady) {
      const msg = stderr.split('\n').find((l) => /ERROR/.test(l)) ?? stderr.trim().split('\n')[0] ?? '';
      rejectReady(new KernelTraceError(`bpftrace failed to start (${signal ?? `exit ${code}`})${msg ? `: ${msg.trim()}` : ''}`));
    } else if (!stopping) {
      warn(`bpftrace ended unexpectedly (${signal ?? `exit ${code}`})`);
      void stop();
    }
  });

  let stopping = false;
  let resolveFinished!: (s: KernelTraceStats) => void;
  const finished = new Promise<KernelTraceStats>((res) => (resolveFinished = res));
  let stopped: Promise<KernelTraceStats> | undefined;
  const stop = (): Promise<KernelTraceStats> => {
    stopped ??= (async () => {
      stopping = true;
      if (rssTimer) clearInterval(rssTimer);
      if (o.rssIntervalMs !== 0) sampleRss();
      const running = () => child.exitCode === null && child.signalCode === null;
      if (running()) child.kill('SIGINT');
      if (kstack && kstack.child.exitCode === null && kstack.child.signalCode === null) kstack.child.kill('SIGINT');
      // bpftrace (0.17 here) misses a SIGINT that lands between its check of the flag and its
      // epoll_wait with no timeout: it then sleeps until its next event, for ever on a quiet
      // target. Another SIGINT wakes it, and it ends cleanly; SIGKILL stays the last resort.
      const nudge = setInterval(() => { if (running()) child.kill('SIGINT'); }, SIGINT_REPEAT_MS);
      const killer = setTimeout(() => {
        child.kill('SIGKILL');
        kstack?.child.kill('SIGKILL');
      }, 5000);
      await closed;
      await kstack?.closed;
      clearInterval(nudge);
      clearTimeout(killer);
      if (stacksLost) warn(`${stacksLost} mmap stacks dropped (ring buffer full): those mmaps have their leaf frame only`);
      const stats = { events, lost, stacksLost, warnings };
      resolveFinished(stats);
      return stats;
    })();
    return stopped;
  };

  // Ask until bpftrace answers: its READY probe fires on our getppid() once attached.
  const poke = setInterval(() => void process.ppid, 20);
  const startTimeout = setTimeout(() => {
    if (isReady) return;
    rejectReady(new KernelTraceError('bpftrace did not attach its probes within 60 s'));
  }, 60_000);
  try {
    await ready;
  } catch (e) {
    clearInterval(poke);
    clearTimeout(startTimeout);
    await stop();
    throw e;
  }
  clearInterval(poke);
  clearTimeout(startTimeout);
  const rssMs = o.rssIntervalMs ?? 1000;
  if (rssMs > 0) {
    sampleRss();
    rssTimer = setInterval(sampleRss, Math.max(10, rssMs));
  }
  // A target may have exited while bpftrace was starting: its exit event was never seen.
  for (const p of [...pids]) if (!processInfo(p)) pids.delete(p);
  if (pids.size === 0 && exes.length === 0) void stop();
  return { pids, stop, finished };
}
