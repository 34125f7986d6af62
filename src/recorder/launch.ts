// Runs a command under the recorder: writes the trace header (the recorder only appends chunks),
// sets LD_PRELOAD and the recorder's settings, passes signals through, and reports how the
// command ended.

import { spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import type { TraceMeta } from '../model/events.js';
import { TraceWriter } from '../trace/writer.js';

export interface RecordOptions {
  command: string[];
  /** The recorder library. */
  library: string;
  trace: string;
  /** Record allocations with probability 1 - exp(-size / sampleBytes); 0 or absent = all. */
  sampleBytes?: number;
  /** Stack depth limit (default 64). */
  depth?: number;
  env?: NodeJS.ProcessEnv;
  /** Called once the command runs. */
  onStart?: (pid: number) => void;
}

export interface RecordResult {
  pid: number;
  /** The command's exit status, 128 + signal number when a signal ended it. */
  status: number;
  signal?: NodeJS.Signals;
}

/** Signals passed to the command. SIGINT only when no terminal delivered it to the command itself. */
function forwardedSignals(): NodeJS.Signals[] {
  const sigs: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];
  return sigs.concat(process.stdin.isTTY ? [] : ['SIGINT']);
}

export function traceMeta(command: string[], sampleBytes?: number): TraceMeta {
  return {
    format: 1,
    clock: 'ns',
    source: 'recorder',
    startWallMs: Date.now(),
    // libuv's hrtime is CLOCK_MONOTONIC: the recorder measures t against the same clock.
    startMonoNs: process.hrtime.bigint().toString(),
    command: command.join(' '),
    hostname: hostname(),
    ...(sampleBytes ? { sampleBytes } : {}),
  };
}

export async function runRecorded(opts: RecordOptions): Promise<RecordResult> {
  const meta = traceMeta(opts.command, opts.sampleBytes);
  const w = TraceWriter.create(opts.trace, meta);
  await w.close();

  const base = opts.env ?? process.env;
  const preload = base.LD_PRELOAD ? `${opts.library} ${base.LD_PRELOAD}` : opts.library;
  const env: NodeJS.ProcessEnv = {
    ...base,
    LD_PRELOAD: preload,
    LEAKSCOPE_TRACE: opts.trace,
    LEAKSCOPE_START_NS: meta.startMonoNs,
    LEAKSCOPE_DEPTH: String(opts.depth ?? 64),
  };
  delete env.LEAKSCOPE_PID;  // the command is a new process, not an exec of a traced one
  if (opts.sampleBytes) env.LEAKSCOPE_SAMPLE = String(Math.round(opts.sampleBytes));
  else delete env.LEAKSCOPE_SAMPLE;

  const [cmd, ...args] = opts.command;
  const child = spawn(cmd!, args, { env, stdio: 'inherit' });
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of forwardedSignals()) {
    const h = (): void => {
      if (child.pid) child.kill(sig);
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  const ignoreInt = (): void => {};  // the terminal sent it to the command too: wait for it to end
  if (process.stdin.isTTY) process.on('SIGINT', ignoreInt);
  try {
    return await new Promise<RecordResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => opts.onStart?.(child.pid!));
      child.once('exit', (code, signal) => {
        if (signal) resolve({ pid: child.pid!, status: 128 + (signalNumber(signal) ?? 0), signal });
        else resolve({ pid: child.pid!, status: code ?? 1 });
      });
    });
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    process.off('SIGINT', ignoreInt);
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (constants.signals as Record<string, number>)[sig];
}
