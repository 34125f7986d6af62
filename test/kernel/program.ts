// Runs test/programs/unw-kernel.c: starts it, lets it go, collects its STEP lines.
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { testDir } from '../support/tmp.js';

const root = new URL('../..', import.meta.url).pathname;

export function buildKernelProgram(): { path: string; dir: string } {
  const dir = testDir('ls-kernel');
  const path = join(dir, 'unw-kernel');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', path, join(root, 'test/programs/unw-kernel.c')]);
  return { path, dir };
}

export interface Run {
  child: ChildProcessByStdio<Writable, Readable, null>;
  pid: number;
  steps: Map<string, number>;
  /** Resolves when the program printed STEP name. */
  step(name: string): Promise<number>;
  go(): void;
  exited: Promise<number | null>;
}

export async function startKernelProgram(path: string): Promise<Run> {
  const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const steps = new Map<string, number>();
  const waiters = new Map<string, (v: number) => void>();
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    lines.once('line', (l) => resolve(Number(l)));
  });
  lines.on('line', (l) => {
    const m = /^STEP (\S+) (\d+)$/.exec(l);
    if (!m) return;
    steps.set(m[1]!, Number(m[2]));
    waiters.get(m[1]!)?.(Number(m[2]));
  });
  return {
    child, pid, steps, exited,
    go: () => child.stdin.write('go\n'),
    step: (name) => steps.has(name) ? Promise.resolve(steps.get(name)!) : new Promise((r) => waiters.set(name, r)),
  };
}

export const MiB = 1024 * 1024;
