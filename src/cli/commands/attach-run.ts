// `leakscope attach`: the options as the library takes them (src/attach/attach.ts does the
// work), its lines on stderr, its tables and report on stdout, and a stop on a signal.
// Registered by commands/attach.ts, which loads this module only when the command runs.

import { attach } from '../../attach/attach.js';

export interface AttachCliOptions {
  pid?: number;
  children?: boolean;
  exe?: string;
  allocator?: string[];
  poolAllocs?: boolean;
  mode: 'auto' | 'events' | 'aggregate' | 'walk';
  budget: number;
  duration?: number;
  interval?: number;
  output?: string;
  format: string;
  stackBytes: number;
  ringbufMb?: number;
  top: number;
  unwind: boolean;
  poolSample: number;
  report: boolean;
}

/** SIGHUP too: a closed terminal ends the trace cleanly. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export async function attachCommand(o: AttachCliOptions): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  // Once tracing has stopped, a signal ends the command as it would any other (not the report).
  const release = (): void => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };
  for (const s of STOP_SIGNALS) process.once(s, onSignal);
  // Periodic tables go to stdout, except beside a JSON report, which owns stdout.
  const tableOut = o.format === 'json' ? process.stderr : process.stdout;
  try {
    await attach({
      pid: o.pid, children: o.children === true, exe: o.exe, allocators: o.allocator ?? [], poolAllocs: o.poolAllocs === true,
      mode: o.mode, budget: o.budget, durationMs: o.duration, intervalMs: o.interval, output: o.output, format: o.format,
      stackBytes: o.stackBytes, ringbufMb: o.ringbufMb, top: o.top, unwind: o.unwind, poolSampleMs: o.poolSample, report: o.report,
    }, {
      note: (line) => process.stderr.write(`leakscope: ${line}\n`),
      table: (text) => tableOut.write(text),
      result: (body) => process.stdout.write(body),
      stopped: release,
    }, stop.signal);
  } finally {
    release();
  }
}
