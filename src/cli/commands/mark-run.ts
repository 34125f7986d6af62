// `leakscope mark PID "label" [--trace FILE]`: appends a MARKER chunk to the live trace of a
// process, timed on the trace's timeline (CLOCK_MONOTONIC now - the trace's startMonoNs). The
// trace is found through LEAKSCOPE_TRACE in /proc/PID/environ unless --trace names it. One
// chunk, one write() on an O_APPEND descriptor: safe beside the recorder's own writes.
// Registered by commands/mark.ts, which loads this module only when the command runs.

import { cwdOf, environOf } from '../../proc/processes.js';
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { TraceWriter } from '../../trace/writer.js';
import { readHeader } from '../../trace/header.js';

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

export async function markCommand(pidArg: string, label: string, o: MarkOpts): Promise<void> {
  if (!/^\d+$/.test(pidArg) || Number(pidArg) <= 0) throw new UserError(`PID must be a process id, got "${pidArg}"`);
  const pid = Number(pidArg);
  if (label.length === 0) throw new UserError('the label is empty: give the marker some text');
  if (label.length > 4096) throw new UserError('the label is longer than 4096 characters');
  const path = o.trace ? resolve(o.trace) : traceOfProcess(pid);
  const { meta } = readHeader(path);
  if (meta.clock !== 'ns' || meta.startMonoNs === undefined || !/^\d+$/.test(meta.startMonoNs)) {
    throw new UserError(`${path}: this trace has no monotonic start time (startMonoNs), so a marker cannot be placed on its timeline`);
  }
  const t = Number(process.hrtime.bigint() - BigInt(meta.startMonoNs));
  if (t < 0) throw new UserError(`${path}: the trace starts in the future of this machine's monotonic clock (written on another boot or machine?)`);
  const w = TraceWriter.appendTo(path);
  w.event({ kind: 'marker', pid, t, label });
  await w.close();
  process.stdout.write(`marked pid ${pid} at ${(t / 1e9).toFixed(3)} s: ${JSON.stringify(label)} (${path})\n`);
}
