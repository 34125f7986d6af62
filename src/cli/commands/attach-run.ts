// `leakscope attach` — traces running processes with eBPF uprobes (per-process attachment, no
// restart), pools included, then reports or keeps the trace.
// Registered by commands/attach.ts, which loads this module only when the command runs.

import { existsSync, realpathSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { readElfInfo } from '../../symbols/elf.js';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { UserError } from '../../errors.js';
import { TraceWriter } from '../../trace/writer.js';
import { AttachSession } from '../../attach/session.js';
import { detectProfiles } from '../../attach/detect.js';
import { eventPerCall, loadProfile, type AllocatorProfile } from '../../attach/profile.js';
import { parseDurationMs as parseDuration } from '../../model/units.js';
import { attachLuajitCommand } from '../../attach/luajit-run.js';
import { LiveGrowth, formatGrowthRows } from '../../attach/live-growth.js';
import { unwindLib, type AggRow } from '../../attach/loader.js';
import { ensureNative } from '../../native/ensure.js';
import { commandOf, descendants, pidAlive, pidsRunning, exeOf } from '../../proc/processes.js';
import { checkExe, checkPid, checkProcess } from '../../attach/preflight.js';
import { formatAggregate, topAggregate } from '../../attach/aggregate-view.js';
import { LiveSymbols } from '../../attach/live-symbols.js';
import { renderReport } from '../../attach/report.js';
import { onMarkerSignal } from '../../attach/marker-signal.js';

export interface AttachCliOptions {
  pid?: string;
  children?: boolean;
  exe?: string;
  allocator?: string[];
  poolAllocs?: boolean;
  mode: string;
  duration?: string;
  interval?: string;
  output?: string;
  format: string;
  stackBytes: string;
  ringbufMb?: string;
  top: string;
  unwind: boolean;
  poolSample: string;
  report: boolean;
}

/** How often the trace file is flushed while tracing (ms): what a SIGKILL can lose at most. */
const FLUSH_MS = 1000;
/** A command line on one line of a message, control characters escaped, at most 80 characters. */
function clip(s: string): string {
  const one = s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
}
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function intOption(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

export async function attachCommand(o: AttachCliOptions): Promise<void> {
  if (!o.pid && !o.exe) throw new UserError('say what to trace: --pid PID (optionally --children) or --exe PATH');
  if (o.pid && o.exe) throw new UserError('use either --pid or --exe, not both');
  if (o.mode !== 'events' && o.mode !== 'aggregate' && o.mode !== 'walk') throw new UserError('--mode must be "events", "aggregate" or "walk"');
  // walk: events mode's trace and report, with no probe (the pool trees walked at each sample)
  const walkOnly = o.mode === 'walk';
  const timeline = o.mode === 'events' || walkOnly;
  if (o.format !== 'text' && o.format !== 'json') throw new UserError('--format must be "text" or "json"');
  if (!o.report && !o.output) throw new UserError('--no-report needs -o FILE (otherwise nothing would be kept)');
  if (o.mode === 'aggregate' && o.output) throw new UserError('--mode aggregate keeps its table in kernel maps; it writes no trace (drop -o, or use --mode events)');
  const durationMs = o.duration !== undefined ? parseDuration(o.duration) : undefined;
  if (o.duration !== undefined && durationMs === undefined) throw new UserError(`--duration: "${o.duration}" is not a duration (e.g. 30s, 5m)`);
  const intervalMs = o.interval !== undefined ? parseDuration(o.interval) : undefined;
  if (o.interval !== undefined && (intervalMs === undefined || intervalMs < 100)) throw new UserError(`--interval: "${o.interval}" is not a duration of at least 100ms`);
  const poolSampleMs = parseDuration(o.poolSample);
  if (poolSampleMs === undefined) throw new UserError(`--pool-sample: "${o.poolSample}" is not a duration`);
  if (walkOnly && poolSampleMs === 0) throw new UserError('--mode walk finds pools by walking them at every --pool-sample: give it a period (e.g. --pool-sample 2s)');
  const stackBytes = intOption('stack-bytes', o.stackBytes, 0, 16384);
  const ringbufOpt = o.ringbufMb !== undefined ? intOption('ringbuf-mb', o.ringbufMb, 1, 1024) : undefined;
  const top = intOption('top', o.top, 1, 10000);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new UserError('attach needs root (CAP_BPF and CAP_PERFMON) to load uprobes; run it with sudo');

  let pid: number | undefined;
  let exe: string | undefined;
  if (o.pid !== undefined) {
    pid = intOption('pid', o.pid, 1, 2 ** 22);
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
  if (o.allocator?.length) profiles = o.allocator.map((a) => loadProfile(a));
  else {
    bpfParts();
    const first = pid ?? (exe ? pidsRunning(exe)[0] : undefined);
    const exePath = exe ?? (pid !== undefined ? exeOf(pid) : undefined);
    profiles = exePath ? detectProfiles({ pid: first, exe: exePath }) : [];
    if (profiles.length === 0) profiles = [loadProfile('libc')];
  }
  if (profiles.some((p) => p.engine === 'luajit')) {
    if (profiles.length > 1) throw new UserError('--allocator luajit runs its own tracer: trace it alone (a second attach can trace the other allocators)');
    if (o.mode !== 'events') throw new UserError(`--allocator luajit has no ${o.mode} mode; use --mode events`);
    if (durationMs === undefined) throw new UserError('--allocator luajit needs --duration (after it, the tracer waits for a GC cycle so garbage is not reported as outstanding)');
    const pids = pid !== undefined ? [pid] : pidsRunning(exe!);
    if (pids.length === 0) throw new UserError(`no running process of ${exe}`);
    ensureNative(['luajit']);
    await attachLuajitCommand({ pids, children: o.children === true, durationMs, output: o.output, report: o.report, format: o.format as 'text' | 'json', top });
    return;
  }
  bpfParts(); // the checks below read the target's symbols with the loader
  // refuse what can never be traced, with the reason, before loading anything
  if (pid !== undefined) checkPid(pid, profiles, o.children === true, o.children ? descendants(pid) : []);
  else checkExe(exe!, profiles, pidsRunning(exe!));
  // An event per allocation call (malloc family, pool allocations) fills 16 MiB in well under a
  // second when the reader is starved of CPU (152k events lost in a bench run on a busy
  // machine); pool lifecycle events do not.
  const ringbufMb = ringbufOpt ?? (eventPerCall(profiles, o.poolAllocs === true) ? 64 : 16);
  if (o.poolAllocs && !profiles.some((p) => p.functions.some((f) => f.level === 'pool-allocs'))) {
    throw new UserError(`--pool-allocs: the allocator profile(s) ${profiles.map((p) => p.name).join(', ')} have no pool allocation functions`);
  }

  const tmpDir = o.output ? undefined : mkdtempSync(join(tmpdir(), 'leakscope-attach-'));
  const tracePath = o.output ?? join(tmpDir!, 'attach.lstrace');
  const startMono = process.hrtime.bigint();
  const targetText = pid !== undefined ? `--pid ${pid}${o.children ? ' --children' : ''}` : `--exe ${exe}`;
  const writer = timeline
    ? TraceWriter.create(tracePath, {
        format: 1, clock: 'ns', startWallMs: Date.now(), startMonoNs: startMono.toString(), source: 'attach',
        command: `leakscope attach ${targetText} --allocator ${profiles.map((p) => p.name).join(',')}${o.poolAllocs ? ' --pool-allocs' : ''}`,
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
      process.stderr.write(`leakscope: ${label}: --mode aggregate keeps no timeline, so no marker\n`);
      return;
    }
    sink.event({ kind: 'marker', pid: 0, t, label });
    process.stderr.write(`leakscope: marker "${label}" at ${(t / 1e9).toFixed(3)} s\n`);
  });
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    process.stderr.write(`leakscope: warning: ${m}\n`);
  };

  let session: AttachSession;
  try {
    session = await AttachSession.start({
      target: { pid, children: o.children, exe },
      profiles,
      poolAllocs: o.poolAllocs === true,
      mode: walkOnly ? 'events' : (o.mode as 'events' | 'aggregate'),
      walkOnly,
      stackBytes,
      ringbufMb,
      unwindLib: o.unwind ? unwindLib() : undefined,
      pollMs: 200,
      poolSampleMs: timeline ? poolSampleMs : 0,
      sink,
      startMono,
      onWarning: warn,
      onTraced: (p, parent) => process.stderr.write(parent
        ? `leakscope: tracing process ${p} too (forked by ${parent}, traced from its first instruction)\n`
        : `leakscope: tracing process ${p} too (${clip(commandOf(p) || exeOf(p) || '?')}: started after attach; what it did before now is not seen)\n`),
    });
  } catch (err) {
    markers.off();
    await writer?.close();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
    throw err;
  }
  for (const w of session.loaderWarnings) warn(w);
  const names = profiles.map((p) => p.name).join(', ');
  process.stderr.write(`leakscope: tracing ${pid !== undefined ? `process ${pid}${o.children ? ' and its children' : ''}` : `every ${basename(exe!)} process`} (allocator ${names}, ${o.mode} mode${session.unwinder ? ', CFI unwinding' : ''}); Ctrl-C to stop\n`);

  const symbols = new LiveSymbols(session);
  const aggText = async (rows: AggRow[]): Promise<string> => {
    const labels = await symbols.label(topAggregate(rows, top).map((r) => ({ pid: r.pid, pc: r.site })));
    return formatAggregate(rows, session, top, new Date(), labels);
  };
  // periodic tables go to stdout, except beside a JSON report, which owns stdout
  const tableOut = o.format === 'json' ? process.stderr : process.stdout;
  let ticking = false;
  const tick = async (): Promise<void> => {
    if (ticking) return;
    ticking = true;
    try {
      if (o.mode === 'aggregate') {
        tableOut.write(await aggText(await session.aggregate()));
      } else if (live) {
        // the pools' sizes as they are now, not as the last --pool-sample read them: what grew
        // in this interval is counted in this interval (a pool sampled every 2 s would show its
        // growth an interval late, or in every other 1 s interval)
        if (poolSampleMs > 0) session.samplePools();
        live.sample(Number(process.hrtime.bigint() - startMono));
        const view = live.top(top);
        const labels = await symbols.label(view.rows.filter((r) => r.pc && !r.label).map((r) => ({ pid: r.pid, pc: r.pc })));
        tableOut.write(formatGrowthRows(view, labels, new Date()));
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

  // stop on the duration, a signal (SIGHUP too: a closed terminal ends the trace cleanly), or
  // when every target is gone
  let onSignal: () => void = () => {};
  await new Promise<void>((resolve) => {
    onSignal = resolve;
    for (const s of STOP_SIGNALS) process.once(s, onSignal);
    if (durationMs !== undefined) setTimeout(resolve, durationMs).unref();
    void session.ended.then(resolve);
  });
  for (const s of STOP_SIGNALS) process.off(s, onSignal);
  if (timer) clearInterval(timer);
  if (flusher) clearInterval(flusher);

  const aggRows = o.mode === 'aggregate' ? await session.aggregate() : undefined;
  const finalTable = aggRows && o.format === 'text' ? await aggText(aggRows) : '';
  const stats = await session.stop();
  markers.off();
  await writer?.close();
  if (stats.lost > 0) warn(`${stats.lost} events were lost (ring buffer full); raise --ringbuf-mb or trace fewer functions`);
  if (walkOnly) {
    if (stats.discovery.walks === 0) warn(`--mode walk: no pool tree could be walked (allocator ${names}: its profile gives no roots, or their layout did not match; run 'leakscope doctor')`);
  } else if (stats.probes === 0) warn('no probe was attached; nothing was traced');
  else if (stats.calls === 0 && o.mode === 'events') warn(`no probed function was called in any traced process (allocator ${names}): see the hint under each process`);
  const d = stats.discovery;
  if (d.walks > 0 && walkOnly) process.stderr.write(`leakscope: ${d.walks} pool walks found ${d.found} pools in all (${d.reads} reads, ${d.bytes} bytes, ${d.ms.toFixed(1)} ms)\n`);
  else if (d.walks > 0) process.stderr.write(`leakscope: ${d.found} pools alive before the trace found in the processes' memory (${d.walks} walks, ${d.reads} reads, ${d.bytes} bytes, ${d.ms.toFixed(1)} ms)\n`);

  if (aggRows) {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true }); // aggregate mode writes no trace
    process.stdout.write(o.format === 'json' ? `${JSON.stringify({ mode: 'aggregate', lost: stats.lost, rows: aggRows }, null, 2)}\n` : finalTable);
    return;
  }
  try {
    if (o.output) process.stderr.write(`leakscope: trace written to ${o.output} (${stats.calls} calls from ${stats.processes} processes)\n`);
    if (!o.report) return;
    await renderReport(tracePath, { format: o.format as 'text' | 'json', top, warnings });
  } finally {
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}
