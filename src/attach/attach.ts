// `leakscope attach`'s body: traces running processes with eBPF uprobes (per-process attachment,
// no restart), pools included, then reports or keeps the trace. The CLI (cli/commands/attach-run.ts)
// parses the options and gives where lines, tables and the report go, and when to stop.

import { existsSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { TraceWriter } from '../trace/writer.js';
import { readElfInfo } from '../symbols/elf.js';
import { commandOf, descendants, exeOf, pidAlive, pidsRunning } from '../proc/processes.js';
import { ensureNative } from '../native/ensure.js';
import { AGGREGATE_FORMATS, formatByName } from '../reports/formats.js';
import { topAggregate } from '../reports/aggregate.js';
import { AttachSession } from './session.js';
import { detectProfiles } from './detect.js';
import { eventPerCall, loadProfile, type AllocatorProfile } from './profile.js';
import { attachLuajitCommand } from './luajit-run.js';
import { LiveGrowth, formatGrowthRows } from './live-growth.js';
import { unwindLib, type AggRow } from './loader.js';
import { checkExe, checkPid, checkProcess } from './preflight.js';
import { LiveSymbols } from './live-symbols.js';
import { reportTrace } from './report.js';
import { onMarkerSignal } from './marker-signal.js';
import { AutoMode, autoChooses, DECISION_WINDOW_MS } from './auto-mode.js';
import { DEFAULT_MAX_PROBE_RATE } from './governor.js';
import { cpuSecondsOf } from '../proc/processes.js';
import type { EventSink } from '../model/events.js';

export interface AttachOptions {
  /** Trace this process (and with `children`, its descendants), or every process running `exe`. */
  pid?: number;
  children: boolean;
  exe?: string;
  /** Allocator profile names or files; chosen from the target's symbols when none. */
  allocators: string[];
  poolAllocs: boolean;
  /** auto: events mode unless the probes are hit more than `budget` times a second over the
   *  first seconds, then walk mode (auto-mode.ts). */
  mode: 'auto' | 'events' | 'aggregate' | 'walk';
  /** auto mode's budget in probe hits/s (default DEFAULT_MAX_PROBE_RATE); 0: the probes always.
   *  The other modes never change, whatever it is (as the agent's explicit modes). */
  budget?: number;
  /** auto mode's decision window (ms; DECISION_WINDOW_MS by default). */
  windowMs?: number;
  durationMs?: number;
  /** Print the sites and pools that grew most every interval. */
  intervalMs?: number;
  /** Keep the trace in this file. */
  output?: string;
  /** The report's format (an analysis format, reports/formats.ts). */
  format: string;
  stackBytes: number;
  ringbufMb?: number;
  top: number;
  unwind: boolean;
  poolSampleMs: number;
  report: boolean;
}

/** Where what attach says goes. */
export interface AttachOutput {
  /** One line about the session (what is traced, found, written; warnings start "warning: "). */
  note(line: string): void;
  /** A periodic table (--interval). */
  table(text: string): void;
  /** The report, or aggregate mode's final table. */
  result(body: string | Uint8Array): void;
  /** Tracing has ended (by `stop`, the duration or the targets' exit): what follows is the report. */
  stopped?(): void;
}

/** How often the trace file is flushed while tracing (ms): what a SIGKILL can lose at most. */
const FLUSH_MS = 1000;

/** A command line on one line of a message, control characters escaped, at most 80 characters. */
function clip(s: string): string {
  const one = s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
}

/** Traces until `stop` aborts, `o.durationMs` passes or every target is gone; then reports. */
export async function attach(o: AttachOptions, ui: AttachOutput, stop: AbortSignal): Promise<void> {
  if (o.pid === undefined && !o.exe) throw new UserError('say what to trace: --pid PID (optionally --children) or --exe PATH');
  if (o.pid !== undefined && o.exe) throw new UserError('use either --pid or --exe, not both');
  if (!o.report && !o.output) throw new UserError('--no-report needs -o FILE (otherwise nothing would be kept)');
  if (o.mode === 'aggregate' && o.output) throw new UserError('--mode aggregate keeps its table in kernel maps; it writes no trace (drop -o, or use --mode events)');
  // auto starts as events mode (auto-mode.ts chooses later); walk: events mode's trace and
  // report, with no probe (the pool trees walked at each sample)
  const asked = o.mode === 'auto' ? 'events' : o.mode;
  let walkOnly = asked === 'walk';
  const timeline = asked === 'events' || walkOnly;
  const budget = o.budget ?? DEFAULT_MAX_PROBE_RATE;
  if (!Number.isInteger(budget) || budget < 0) throw new UserError(`--budget: ${o.budget} is not a number of probe hits per second (0: no budget)`);
  if (walkOnly && o.poolSampleMs === 0) throw new UserError('--mode walk finds pools by walking them at every --pool-sample: give it a period (e.g. --pool-sample 2s)');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new UserError('attach needs root (CAP_BPF and CAP_PERFMON) to load uprobes; run it with sudo');
  const { durationMs, intervalMs, poolSampleMs, top } = o;

  const pid = o.pid;
  let exe: string | undefined;
  if (pid !== undefined) {
    if (!pidAlive(pid)) throw new UserError(`process ${pid} does not exist`);
    checkProcess(pid);
  } else {
    if (!existsSync(o.exe!)) throw new UserError(`${o.exe}: no such file`);
    exe = realpathSync(o.exe!);
    if (!statSync(exe).isFile() || !readElfInfo(exe)) throw new UserError(`${o.exe}: not an ELF executable; give the server's binary (e.g. /usr/sbin/nginx)`);
  }

  // The native parts are built on first use: the BPF loader (it also reads a target's symbols
  // to choose its allocators) and the unwinder, or the LuaJIT tracer.
  const bpfParts = (): void => ensureNative(['bpf'], o.unwind ? ['unwind'] : []);
  let profiles: AllocatorProfile[];
  if (o.allocators.length) profiles = o.allocators.map((a) => loadProfile(a));
  else {
    bpfParts();
    const first = pid ?? (exe ? pidsRunning(exe)[0] : undefined);
    const exePath = exe ?? (pid !== undefined ? exeOf(pid) : undefined);
    profiles = exePath ? detectProfiles({ pid: first, exe: exePath }) : [];
    if (profiles.length === 0) profiles = [loadProfile('libc')];
  }
  if (profiles.some((p) => p.engine === 'luajit')) {
    if (profiles.length > 1) throw new UserError('--allocator luajit runs its own tracer: trace it alone (a second attach can trace the other allocators)');
    if (asked !== 'events') throw new UserError(`--allocator luajit has no ${o.mode} mode; use --mode events`);
    if (durationMs === undefined) throw new UserError('--allocator luajit needs --duration (after it, the tracer waits for a GC cycle so garbage is not reported as outstanding)');
    const pids = pid !== undefined ? [pid] : pidsRunning(exe!);
    if (pids.length === 0) throw new UserError(`no running process of ${exe}`);
    ensureNative(['luajit']);
    await attachLuajitCommand({ pids, children: o.children, durationMs, output: o.output, report: o.report, format: o.format, top }, ui, stop);
    return;
  }
  bpfParts(); // the checks below read the target's symbols with the loader
  // refuse what can never be traced, with the reason, before loading anything
  if (pid !== undefined) checkPid(pid, profiles, o.children, o.children ? descendants(pid) : []);
  else checkExe(exe!, profiles, pidsRunning(exe!));
  // An event per allocation call (malloc family, pool allocations) fills 16 MiB in well under a
  // second when the reader is starved of CPU (152k events lost in a bench run on a busy
  // machine); pool lifecycle events do not.
  const ringbufMb = o.ringbufMb ?? (eventPerCall(profiles, o.poolAllocs) ? 64 : 16);
  if (o.poolAllocs && !profiles.some((p) => p.functions.some((f) => f.level === 'pool-allocs'))) {
    throw new UserError(`--pool-allocs: the allocator profile(s) ${profiles.map((p) => p.name).join(', ')} have no pool allocation functions`);
  }
  // where walks cannot stand in for the probes, or per-call data was asked for, auto is events
  const windowMs = o.windowMs ?? DECISION_WINDOW_MS;
  const auto = o.mode === 'auto' && autoChooses(profiles, o.poolAllocs, poolSampleMs, budget);

  const tmpDir = o.output ? undefined : mkdtempSync(join(tmpdir(), 'leakscope-attach-'));
  const tracePath = o.output ?? join(tmpDir!, 'attach.lstrace');
  const startMono = process.hrtime.bigint();
  const targetText = pid !== undefined ? `--pid ${pid}${o.children ? ' --children' : ''}` : `--exe ${exe}`;
  const writer = timeline
    ? TraceWriter.create(tracePath, {
        format: 1, clock: 'ns', startWallMs: Date.now(), startMonoNs: startMono.toString(), source: 'attach',
        command: `leakscope attach ${targetText} --allocator ${profiles.map((p) => p.name).join(',')}${o.poolAllocs ? ' --pool-allocs' : ''} --mode ${o.mode}${o.mode === 'auto' ? ` --budget ${budget}` : ''}`,
        hostname: hostname(),
      })
    : undefined;
  const nullSink = { event() {} };
  const live = intervalMs !== undefined && timeline ? new LiveGrowth(writer!) : undefined;
  const sink = live ?? writer ?? nullSink;
  // SIGUSR1: a marker for every traced process, now (on the trace's timeline).
  const markers = onMarkerSignal((label) => {
    const t = Number(process.hrtime.bigint() - startMono);
    if (!timeline) {
      ui.note(`${label}: --mode aggregate keeps no timeline, so no marker`);
      return;
    }
    sink.event({ kind: 'marker', pid: 0, t, label });
    ui.note(`marker "${label}" at ${(t / 1e9).toFixed(3)} s`);
  });
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    ui.note(`warning: ${m}`);
  };

  const startSession = (walk: boolean, to: EventSink): Promise<AttachSession> => AttachSession.start({
    target: { pid, children: o.children, exe },
    profiles,
    poolAllocs: o.poolAllocs,
    mode: asked === 'aggregate' ? 'aggregate' : 'events',
    walkOnly: walk,
    stackBytes: o.stackBytes,
    ringbufMb,
    unwindLib: o.unwind ? unwindLib() : undefined,
    pollMs: 200,
    poolSampleMs: timeline ? poolSampleMs : 0,
    sink: to,
    startMono,
    onWarning: warn,
    onTraced: (p, parent) => ui.note(parent
      ? `tracing process ${p} too (forked by ${parent}, traced from its first instruction)`
      : `tracing process ${p} too (${clip(commandOf(p) || exeOf(p) || '?')}: started after attach; what it did before now is not seen)`),
  });
  // Tracing ends when the current session's targets are gone (auto mode's switch to walk mode
  // replaces it: the probe session's end is not theirs).
  let session!: AttachSession;
  let endTracing!: () => void;
  const ended = new Promise<void>((r) => { endTracing = r; });
  let watched: AttachSession | undefined;
  const current = (s: AttachSession): void => {
    session = watched = s;
    void s.ended.then(() => { if (watched === s) endTracing(); });
  };
  // auto: the probe session's events are held until the mode is chosen (auto-mode.ts)
  const autoMode = auto
    ? new AutoMode({
        budget,
        windowMs,
        hits: () => session.stats.calls + session.stats.lost,
        cpuS: () => session.pids.reduce((sum, p) => sum + cpuSecondsOf(p), 0),
        hitCostUs: () => session.hitCostUs,
        stopProbes: async () => {
          watched = undefined;
          await session.stop();
        },
        startWalk: async () => {
          current(await startSession(true, sink));
          walkOnly = true;
          // the pools' sizes now, not at the next --pool-sample
          session.samplePools();
        },
        end: () => endTracing(),
        say: (line) => {
          warnings.push(line);
          ui.note(line);
        },
        warn,
      }, sink)
    : undefined;
  try {
    current(await startSession(walkOnly, autoMode?.held ?? sink));
  } catch (err) {
    markers.off();
    await writer?.close();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    throw err;
  }
  for (const w of session.loaderWarnings) warn(w);
  const names = profiles.map((p) => p.name).join(', ');
  const modeText = auto
    ? `auto mode: the probes for ${windowMs / 1000} s, then walk mode instead if they were hit more than ${budget} times a second`
    : `${asked} mode`;
  ui.note(`tracing ${pid !== undefined ? `process ${pid}${o.children ? ' and its children' : ''}` : `every ${basename(exe!)} process`} (allocator ${names}, ${modeText}${session.unwinder ? ', CFI unwinding' : ''}); Ctrl-C to stop`);
  autoMode?.begin();

  // the session of the moment: after a switch to walk mode, the walk's
  const symbols = new LiveSymbols({ locate: (p, pc) => session.locate(p, pc) });
  const aggregate = async (rows: AggRow[], format: string, lost = 0): Promise<string | Uint8Array> => {
    const labels = await symbols.label(topAggregate(rows, top).map((r) => ({ pid: r.pid, pc: r.site })));
    return formatByName(AGGREGATE_FORMATS, format).render({ rows, specs: session, top, when: new Date(), labels, lost });
  };
  let ticking = false;
  const tick = async (): Promise<void> => {
    // while auto mode chooses, nothing reaches the view yet: its first table comes after
    if (ticking || (autoMode && autoMode.state !== 'events' && autoMode.state !== 'walk')) return;
    ticking = true;
    try {
      if (asked === 'aggregate') {
        ui.table(String(await aggregate(await session.aggregate(), 'text')));
      } else if (live) {
        // the pools' sizes as they are now, not as the last --pool-sample read them: what grew
        // in this interval is counted in this interval (a pool sampled every 2 s would show its
        // growth an interval late, or in every other 1 s interval)
        if (poolSampleMs > 0) session.samplePools();
        live.sample(Number(process.hrtime.bigint() - startMono));
        const view = live.top(top);
        const labels = await symbols.label(view.rows.filter((r) => r.pc && !r.label).map((r) => ({ pid: r.pid, pc: r.pc })));
        ui.table(formatGrowthRows(view, labels, new Date()));
      }
    } finally {
      ticking = false;
    }
  };
  const timer = intervalMs !== undefined ? setInterval(() => void tick(), intervalMs) : undefined;
  if (live) live.sample(0);
  // The trace reaches the file at least once a second, as `run`'s does: a SIGKILL (or a crash)
  // loses at most the last second, never the whole trace.
  const flusher = writer ? setInterval(() => writer.flush(), FLUSH_MS) : undefined;

  // stop on the duration, the caller's signal, or when every target is gone
  await new Promise<void>((resolve) => {
    if (stop.aborted) return resolve();
    stop.addEventListener('abort', () => resolve(), { once: true });
    if (durationMs !== undefined) setTimeout(resolve, durationMs).unref();
    void ended.then(resolve);
  });
  ui.stopped?.();
  if (timer) clearInterval(timer);
  // within auto mode's window: the held events are written (a switch under way ends first)
  await autoMode?.settle();
  if (flusher) clearInterval(flusher);

  const aggRows = asked === 'aggregate' ? await session.aggregate() : undefined;
  // The text table names call sites, which needs the processes' symbols while still attached.
  const finalTable = aggRows && o.format === 'text' ? await aggregate(aggRows, 'text') : undefined;
  const stats = await session.stop();
  markers.off();
  await writer?.close();
  if (stats.lost > 0) warn(`${stats.lost} events were lost (ring buffer full); raise --ringbuf-mb or trace fewer functions`);
  if (walkOnly) {
    if (stats.discovery.walks === 0) warn(`--mode walk: no pool tree could be walked (allocator ${names}: its profile gives no roots, or their layout did not match; run 'leakscope doctor')`);
  } else if (stats.probes === 0) warn('no probe was attached; nothing was traced');
  else if (stats.calls === 0 && asked === 'events') warn(`no probed function was called in any traced process (allocator ${names}): see the hint under each process`);
  const d = stats.discovery;
  if (d.walks > 0 && walkOnly) ui.note(`${d.walks} pool walks found ${d.found} pools in all (${d.reads} reads, ${d.bytes} bytes, ${d.ms.toFixed(1)} ms)`);
  else if (d.walks > 0) ui.note(`${d.found} pools alive before the trace found in the processes' memory (${d.walks} walks, ${d.reads} reads, ${d.bytes} bytes, ${d.ms.toFixed(1)} ms)`);

  if (aggRows) {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true }); // aggregate mode writes no trace
    ui.result(finalTable ?? await formatByName(AGGREGATE_FORMATS, o.format).render({ rows: aggRows, specs: session, top, when: new Date(), labels: new Map(), lost: stats.lost }));
    return;
  }
  try {
    if (o.output) ui.note(`trace written to ${o.output} (${stats.calls} calls from ${stats.processes} processes)`);
    if (!o.report) return;
    ui.result(await reportTrace(tracePath, { format: o.format, top, warnings }));
  } finally {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}
