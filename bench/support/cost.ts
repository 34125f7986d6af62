// Where a tracer's cost per request goes, measured in the same run: CPU of each process (from
// /proc/PID/stat), and the BPF programs' own run time (the kernel's per-program run_time_ns and
// run_cnt, shown in the loader's /proc/PID/fdinfo while kernel.bpf_stats_enabled is 1). With a
// run of the same probes whose programs return at once (LEAKSCOPE_BPF_BARE: the traps alone),
// the traced server's extra CPU per request splits into
//   traps   = server CPU (bare programs) - server CPU (untraced)
//   bpf     = the programs' run time per request (they run in the server's threads)
//   rest    = what is left of the server's extra CPU (cache effects, noise)
// and the tracer's own processes (loader: ring-buffer reading, unwinding; node: decoding,
// folding) add theirs on top: on a 2-core machine they take their CPU from the server and wrk.
//
// Also here: stopping what a bench started when it is killed (SIGINT/SIGTERM), by pid.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { descendants, nameOf, ppidOf } from '../../src/proc/processes.js';

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** utime+stime of a process (all its threads), in µs; 0 once it is gone. */
export function cpuUs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

/** The direct children of a process (src/proc is the one reader of /proc). */
export function childrenOf(pid: number): number[] {
  return descendants(pid).filter((p) => ppidOf(p) === pid);
}

/** A process and its descendants. */
export function treeOf(pid: number): number[] {
  return [pid, ...descendants(pid)];
}

export const commOf = nameOf;

/** The BPF programs a process holds (by fd): summed run time (ns) and runs, while stats are on. */
export function bpfRun(pid: number): { ns: number; runs: number } {
  let ns = 0;
  let runs = 0;
  const seen = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { ns, runs };
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      const id = /^prog_id:\s*(\d+)/m.exec(info)?.[1] ?? fd;
      if (seen.has(id)) continue;
      seen.add(id);
      ns += Number(/^run_time_ns:\s*(\d+)/m.exec(info)?.[1] ?? 0);
      runs += Number(/^run_cnt:\s*(\d+)/m.exec(info)?.[1] ?? 0);
    } catch { /* closed meanwhile */ }
  }
  return { ns, runs };
}

const STATS = '/proc/sys/kernel/bpf_stats_enabled';

/** Turns the kernel's BPF run-time statistics on (a few ns per program run) until restore(). */
export function bpfStatsOn(): () => void {
  let was = '0';
  try {
    was = readFileSync(STATS, 'utf8').trim();
    writeFileSync(STATS, '1');
  } catch {
    return () => {};
  }
  const restore = () => {
    try { writeFileSync(STATS, was); } catch { /* */ }
  };
  atExit(restore);
  return restore;
}

/** CPU of named parts sampled before and after a measured span, per request. */
export class Meter {
  private readonly t0 = new Map<string, number>();
  private b0 = { ns: 0, runs: 0 };
  constructor(private readonly parts: Record<string, () => number[]>, private readonly bpfHolder?: () => number | undefined) {}

  start(): void {
    for (const [k, pids] of Object.entries(this.parts)) this.t0.set(k, pids().reduce((s, p) => s + cpuUs(p), 0));
    const h = this.bpfHolder?.();
    this.b0 = h ? bpfRun(h) : { ns: 0, runs: 0 };
  }

  /** µs per request of each part, the BPF programs' µs per request and probe hits per request. */
  stop(requests: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, pids] of Object.entries(this.parts)) out[k] = (pids().reduce((s, p) => s + cpuUs(p), 0) - (this.t0.get(k) ?? 0)) / requests;
    const h = this.bpfHolder?.();
    if (h) {
      const b = bpfRun(h);
      out.bpf = (b.ns - this.b0.ns) / 1000 / requests;
      out.hits = (b.runs - this.b0.runs) / requests;
    }
    return out;
  }
}

/** The loader (leakscope-bpf) below a tracer's node process, if running. */
export function loaderOf(nodePid: number): number | undefined {
  return treeOf(nodePid).find((p) => p !== nodePid && commOf(p).startsWith('leakscope-bpf'));
}

// ---- stopping what a bench started, when it is killed ----

const started = new Set<ChildProcess>();
const startedPids = new Set<number>();
const exitHooks: (() => void)[] = [];
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      // exactly the processes this bench started (and still running), by pid
      for (const c of started) {
        if (c.pid && c.exitCode === null && c.signalCode === null) {
          try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
        }
      }
      for (const pid of startedPids) {
        try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      }
      for (const h of exitHooks.splice(0)) h();
      console.error(`bench: stopped by ${sig}; the processes it started were sent SIGTERM`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('exit', () => { for (const h of exitHooks.splice(0)) h(); });
}

/** A process the bench started: sent SIGTERM if the bench is killed. */
export function track<T extends ChildProcess>(c: T): T {
  install();
  started.add(c);
  c.once('exit', () => started.delete(c));
  return c;
}

/** A process the bench started that is not its child object (a server helper's master pid):
 *  sent SIGTERM if the bench is killed; untrack() once the bench stopped it itself. */
export function trackPid(pid: number): void {
  install();
  startedPids.add(pid);
}

export function untrackPid(pid: number): void {
  startedPids.delete(pid);
}

/** Runs at exit, or when the bench is killed. */
export function atExit(f: () => void): void {
  install();
  exitHooks.push(f);
}

/** A command's output, run without blocking the event loop (a kill of the bench stops it too). */
export function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const c = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    c.once('error', reject);
    c.once('close', (code) => resolve({ stdout, stderr, code: code ?? 1 }));
  });
}
