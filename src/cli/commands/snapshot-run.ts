// `leakscope snapshot PID`: asks a process running under `leakscope run` to write out what it
// has recorded so far (SIGUSR2; the recorder flushes every buffer at once, and drops a marker).
// Registered by commands/snapshot.ts, which loads this module only when the command runs.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';

/** PF_KTHREAD in the flags of /proc/PID/stat: kernel threads have no environment to read. */
const PF_KTHREAD = 0x00200000;

/** The process's name and whether it is a kernel thread; undefined when there is no such process. */
function describe(pid: number): { comm: string; kernel: boolean } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const flags = Number(stat.slice(close + 2).split(' ')[6]);
    return { comm, kernel: (flags & PF_KTHREAD) !== 0 };
  } catch {
    return undefined;
  }
}

/** The trace a process records to, from its environment; undefined when it is not traced. */
export function traceOf(pid: number): string | undefined {
  let env: string;
  try {
    env = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      // A kernel thread (or a process that is exiting) exists but has no environment.
      const d = describe(pid);
      if (!d) throw new UserError(`no process ${pid}`);
      if (d.kernel) throw new UserError(`process ${pid} (${JSON.stringify(d.comm).slice(1, -1)}) is a kernel thread, not a program running under \`leakscope run\``);
      return undefined;
    }
    if (code === 'EACCES') throw new UserError(`process ${pid}: permission denied (run as its user or root)`);
    throw err;
  }
  for (const kv of env.split('\0')) if (kv.startsWith('LEAKSCOPE_TRACE=')) return kv.slice('LEAKSCOPE_TRACE='.length);
  return undefined;
}

function recorderLoaded(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/maps`, 'latin1').includes('libleakscope.so');
  } catch {
    return false;
  }
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
