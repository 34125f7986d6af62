// `leakscope kernel` — the kernel side alone: mappings, brk, shared memory, RSS, page faults,
// OOM kills and reclaim stalls of a process tree (or of an executable's processes) into a trace.
// Registered by commands/kernel.ts, which loads this module only when the command runs.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { UserError } from '../../errors.js';
import { TraceWriter } from '../../trace/writer.js';
import { FORMAT_VERSION } from '../../trace/format.js';
import { monoNowNs } from '../../kernel/clock.js';
import { parseDurationMs } from '../../model/units.js';
import { pidsRunning } from '../../proc/processes.js';
import { KernelTraceError, startKernelTrace } from '../../kernel/trace.js';
import { ensureNative } from '../../native/ensure.js';

export interface KernelOpts {
  pid?: string[];
  exe?: string;
  duration?: string;
  output: string;
  rssInterval: string;
  faults?: boolean;
  machine: boolean;
}

export async function kernelCommand(o: KernelOpts): Promise<void> {
  const pids = (o.pid ?? []).flatMap((s) => s.split(',')).filter(Boolean).map((s) => {
    if (!/^\d+$/.test(s) || Number(s) <= 0) throw new UserError(`--pid: not a process id: ${s}`);
    return Number(s);
  });
  let exe: string | undefined;
  if (o.exe) {
    exe = resolve(o.exe);
    if (!existsSync(exe)) throw new UserError(`--exe: ${exe}: no such file`);
    pids.push(...pidsRunning(exe));
  }
  if (!o.pid?.length && !o.exe) throw new UserError('give --pid PID or --exe PATH (see leakscope kernel --help)');
  const durationMs = o.duration === undefined ? undefined : parseDurationMs(o.duration);
  if (o.duration !== undefined && durationMs === undefined) throw new UserError(`--duration: not a duration: ${o.duration} (e.g. 30s, 5m)`);
  const rssMs = o.rssInterval === '0' ? 0 : parseDurationMs(o.rssInterval);
  if (rssMs === undefined) throw new UserError(`--rss-interval: not a duration: ${o.rssInterval}`);

  // ls-kstack (mmap events with whole stacks) is built on first use when it can be; without it
  // mmap events come without stacks.
  ensureNative([], ['kstack']);
  const start = monoNowNs();
  const writer = TraceWriter.create(o.output, {
    format: FORMAT_VERSION, clock: 'ns', startWallMs: Date.now(), startMonoNs: start.toString(),
    source: 'kernel', command: exe ?? `pid ${pids.join(',')}`, hostname: hostname(),
  });
  let trace;
  try {
    trace = await startKernelTrace({
      sink: writer, startMonoNs: start, pids, exe, rssIntervalMs: rssMs, faults: o.faults, machine: o.machine,
      onWarning: (m) => process.stderr.write(`leakscope: warning: ${m}\n`),
    });
  } catch (err) {
    await writer.close();
    // Nothing was traced: leave no header-only file behind (a device or FIFO is not ours to remove).
    if (o.output !== '-' && lstatSync(o.output, { throwIfNoEntry: false })?.isFile()) rmSync(o.output, { force: true });
    throw err instanceof KernelTraceError ? new UserError(err.message) : err;
  }
  process.stderr.write(`leakscope: tracing the kernel side of ${trace.pids.size ? `pid ${[...trace.pids].join(',')}` : ''}${exe ? `${trace.pids.size ? ' and ' : ''}processes of ${exe}` : ''}; Ctrl-C to stop\n`);
  const stop = () => void trace.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const timer = durationMs ? setTimeout(stop, durationMs) : undefined;
  const stats = await trace.finished;
  if (timer) clearTimeout(timer);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await writer.close();
  process.stderr.write(`leakscope: wrote ${stats.events} events to ${o.output === '-' ? 'stdout' : o.output}${stats.lost ? ` (${stats.lost} lost)` : ''}\n`);
}
