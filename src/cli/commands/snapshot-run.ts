// `leakscope snapshot PID`: asks a process running under `leakscope run` to write out what it
// has recorded so far (SIGUSR2; the recorder flushes every buffer at once, and drops a marker).
// Registered by commands/snapshot.ts, which loads this module only when the command runs.

import { spawnSync } from 'node:child_process';
import { readMaps } from '../../proc/maps.js';
import { environOf, isKernelThread, nameOf, processInfo } from '../../proc/processes.js';
import { UserError } from '../../errors.js';

/** The trace a process records to, from its environment; undefined when it is not traced. */
export function traceOf(pid: number): string | undefined {
  let env: string[];
  try {
    env = environOf(pid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      // A kernel thread (or a process that is exiting) exists but has no environment.
      if (!processInfo(pid)) throw new UserError(`no process ${pid}`);
      if (isKernelThread(pid)) throw new UserError(`process ${pid} (${JSON.stringify(nameOf(pid)).slice(1, -1)}) is a kernel thread, not a program running under \`leakscope run\``);
      return undefined;
    }
    if (code === 'EACCES') throw new UserError(`process ${pid}: permission denied (run as its user or root)`);
    throw err;
  }
  for (const kv of env) if (kv.startsWith('LEAKSCOPE_TRACE=')) return kv.slice('LEAKSCOPE_TRACE='.length);
  return undefined;
}

function recorderLoaded(pid: number): boolean {
  return readMaps(pid).some((m) => m.path.includes('libleakscope.so'));
}

export function snapshotCommand(pidArg: string): void {
  if (!/^\d+$/.test(pidArg) || Number(pidArg) < 1) throw new UserError(`"${pidArg}" is not a process id`);
  const pid = Number(pidArg);
  const trace = traceOf(pid);
  // SIGUSR2 would kill a process without the recorder's handler: check first.
  if (!trace || !recorderLoaded(pid)) throw new UserError(`process ${pid} is not running under \`leakscope run\``);
  // Sent with sigqueue and the value 1 (procps kill -q), so the recorder labels the marker it
  // drops "snapshot #N" rather than "SIGUSR2 #N" (a plain kill); node can only kill().
  const q = spawnSync('kill', ['-s', 'USR2', '-q', '1', String(pid)], { stdio: 'ignore' });
  if (q.error || q.status !== 0) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      throw new UserError(`process ${pid} ended before it could be asked`);
    }
  }
  process.stdout.write(`asked process ${pid} to flush its recording to ${trace} (marker "snapshot #N" in the trace)\n`);
}
