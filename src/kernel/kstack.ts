// The kernel side's mmap events with whole user stacks: native/unwind/build/ls-kstack (a small
// libbpf program: registers + a copy of the stack at sys_exit_mmap, unwound with ls_unwind).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { findNative } from '../native/locate.js';

/** ls-kstack's path (the package's native/ or the per-user cache), when built. */
export function kstackPath(): string | undefined {
  return findNative('kstack');
}

export function kstackAvailable(): boolean {
  return kstackPath() !== undefined;
}

export interface KstackMmap {
  ns: bigint; pid: number; tid: number; addr: number; size: number; prot: number; flags: number;
  /** Whose modules the pcs lie in: the pid itself, or the parent of a forked child gone since. */
  modPid: number;
  /** The pid it was forked from while traced (0: unknown); it has that one's modules until it execs. */
  parent: number;
  pcs: number[];
}

export function parseKstackLine(line: string): KstackMmap | { lost: number } | 'ready' | undefined {
  if (line === 'READY') return 'ready';
  const lost = /^LOST (\d+)$/.exec(line);
  if (lost) return { lost: Number(lost[1]) };
  const m = /^MS (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) ([0-9a-f]+(?:,[0-9a-f]+)*)$/.exec(line);
  if (!m) return undefined;
  return {
    ns: BigInt(m[1]!), pid: Number(m[2]), tid: Number(m[3]), addr: Number(m[4]), size: Number(m[5]),
    prot: Number(m[6]), flags: Number(m[7]), modPid: Number(m[8]), parent: Number(m[9]), pcs: m[10]!.split(',').map((h) => parseInt(h, 16)),
  };
}

export interface Kstack {
  child: ChildProcess;
  ready: Promise<void>;
  closed: Promise<void>;
}

/** Starts ls-kstack on `pids` and on processes that exec `exe` (children followed); `onLine`
 *  gets every stdout line. */
export function startKstack(pids: number[], exe: string | undefined, onLine: (line: string) => void, onError: (msg: string) => void): Kstack {
  const args = [...(exe ? ['--exe', exe] : []), ...pids.map(String)];
  const KSTACK_PATH = kstackPath() ?? 'ls-kstack';
  const child = spawn(KSTACK_PATH, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let isReady = false;
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!isReady && l === 'READY') {
        isReady = true;
        resolve();
      }
      onLine(l);
    });
    child.once('error', (e) => reject(new Error(`cannot run ${KSTACK_PATH}: ${e.message}`)));
    child.once('exit', (code, sig) => {
      if (!isReady) reject(new Error(`ls-kstack failed (${sig ?? `exit ${code}`}): ${stderr.trim().split('\n')[0] ?? ''}`));
      else if (code) onError(`ls-kstack ended (exit ${code}): ${stderr.trim().split('\n')[0] ?? ''}`);
    });
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return { child, ready, closed };
}
