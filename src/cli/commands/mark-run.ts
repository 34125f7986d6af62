// `leakscope mark PID "label" [--trace FILE]`: appends a MARKER chunk to the live trace of a
// process, timed on the trace's timeline (now - the trace's startMonoNs) by the clock its events
// are stamped with: the recorder's (`run`) is CLOCK_MONOTONIC_COARSE, read by its ls-clock. The
// trace is found through LEAKSCOPE_TRACE in /proc/PID/environ unless --trace names it. One
// chunk, one write() on an O_APPEND descriptor: safe beside the recorder's own writes.
// Registered by commands/mark.ts, which loads this module only when the command runs.

import { cwdOf, environOf } from '../../proc/processes.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { TraceWriter } from '../../trace/writer.js';
import { readHeader } from '../../trace/header.js';
import { execFileSync } from 'node:child_process';
import { ensureNative } from '../../native/ensure.js';
import { findNative, rebuildCommand } from '../../native/locate.js';

export interface MarkOpts {
  trace?: string;
}

/** The trace a process writes, from LEAKSCOPE_TRACE in its environment (relative to its cwd). */
function traceOfProcess(pid: number): string {
  let env: string[];
  try {
    env = environOf(pid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`no process ${pid}`);
    if (code === 'EACCES' || code === 'EPERM') throw new UserError(`cannot read the environment of process ${pid} (run as its user or root, or pass --trace FILE)`);
    throw err;
  }
  const entry = env.find((v) => v.startsWith('LEAKSCOPE_TRACE='));
  const value = entry?.slice('LEAKSCOPE_TRACE='.length);
  if (!value) throw new UserError(`process ${pid} has no LEAKSCOPE_TRACE in its environment (was it started by leakscope run?): pass --trace FILE`);
  if (isAbsolute(value)) return value;
  try {
    return resolve(cwdOf(pid), value);
  } catch {
    throw new UserError(`process ${pid} names a relative trace path "${value}" and its working directory cannot be read: pass --trace FILE`);
  }
}

/**
 * Now, on the clock the trace's events are stamped with. The recorder stamps its events with
 * CLOCK_MONOTONIC_COARSE, which lags CLOCK_MONOTONIC by up to a tick or more (4-6 ms at 250 Hz):
 * a marker timed on the precise clock could land after events recorded after it. Node reads only
 * the precise clock, so the recorder's ls-clock reads the coarse one. Other sources (attach, the
 * agent) stamp with CLOCK_MONOTONIC.
 */
function eventClockNow(source: string | undefined): bigint {
  if (source !== 'recorder') return process.hrtime.bigint();
  ensureNative(['recorder']); // ls-clock is built beside the recorder library
  const clock = join(dirname(findNative('recorder')!), 'ls-clock');
  try {
    return BigInt(execFileSync(clock, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
  } catch (err) {
    // A recorder built before ls-clock existed has the library alone: the part needs a rebuild.
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `is not built (run '${rebuildCommand()}')` : `failed: ${(err as Error).message.split('\n')[0]}`;
    throw new UserError(`${clock} (the recorder's clock, which a marker must be timed on) ${why}`);
  }
}

export async function markCommand(pid: number, label: string, o: MarkOpts): Promise<void> {
  if (label.length === 0) throw new UserError('the label is empty: give the marker some text');
  if (label.length > 4096) throw new UserError('the label is longer than 4096 characters');
  const path = o.trace ? resolve(o.trace) : traceOfProcess(pid);
  const { meta } = readHeader(path);
  if (meta.clock !== 'ns' || meta.startMonoNs === undefined || !/^\d+$/.test(meta.startMonoNs)) {
    throw new UserError(`${path}: this trace has no monotonic start time (startMonoNs), so a marker cannot be placed on its timeline`);
  }
  const raw = Number(eventClockNow(meta.source) - BigInt(meta.startMonoNs));
  // Just after the start, the coarse clock may still read before it: the recorder clamps to 0 too.
  if (raw < -1e9) throw new UserError(`${path}: the trace starts in the future of this machine's monotonic clock (written on another boot or machine?)`);
  const t = Math.max(0, raw);
  const w = TraceWriter.appendTo(path);
  w.event({ kind: 'marker', pid, t, label });
  await w.close();
  process.stdout.write(`marked pid ${pid} at ${(t / 1e9).toFixed(3)} s: ${JSON.stringify(label)} (${path})\n`);
}
