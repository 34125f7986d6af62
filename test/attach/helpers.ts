// Shared by the attach tests: build our C test programs, start and stop exactly the processes a
// test started, run `leakscope attach` and parse its JSON report.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { AnalysisResult, PoolReport } from '../../src/analyses/result.js';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { spawnCli } from '../support/cli.js';
import { testDir } from '../support/tmp.js';

export const root = new URL('../..', import.meta.url).pathname;

/** Every pool of a report's pool forest, parents before their children. */
export function flatPools(forest: PoolReport[]): PoolReport[] {
  return forest.flatMap((p) => [p, ...flatPools(p.children)]);
}

export function tempDir(tag: string): string {
  return testDir(`leakscope-${tag}`);
}

/** Builds test/programs/NAME.c like a distribution binary (-O2, no frame pointers). */
export function buildProgram(name: string, dir: string): string {
  const out = join(dir, name);
  const r = spawnSync('cc', ['-O2', '-g', '-fomit-frame-pointer', '-o', out, join(root, 'test/programs', `${name}.c`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc ${name}: ${r.stderr}`);
  return out;
}

/** Starts a program that prints "ready" once set up, and waits for that line. */
export async function startReady(cmd: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready`)));
  });
  return child;
}

/** A test program that waits for "go" on stdin after "ready" (att-pool ... go): the test starts
 *  it once its tracer is live, then waits for what the program says it did, never for a time. */
export interface Driven {
  child: ChildProcess;
  pid: number;
  go(): void;
  /** What the program printed so far. */
  output(): string;
  /** The last "leaked N" it printed (0 before the first). */
  leaked(): number;
  /** Resolves once the program has printed "leaked N" for at least n leaks. */
  untilLeaked(n: number): Promise<void>;
}

export async function startDriven(cmd: string, args: string[]): Promise<Driven> {
  const child = spawn(cmd, [...args, 'go'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: { test: () => boolean; resolve: () => void }[] = [];
  const leaked = (): number => {
    const all = out.match(/^leaked (\d+)$/gm);
    return all ? Number(all[all.length - 1]!.slice(7)) : 0;
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) if (w.test()) w.resolve(); else waiters.push(w);
  });
  const until = (test: () => boolean, what: string): Promise<void> => new Promise((resolve, reject) => {
    if (test()) return resolve();
    waiters.push({ test, resolve });
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before ${what}; it printed:\n${out.slice(-500)}`)));
  });
  await until(() => out.includes('ready'), 'it was ready');
  return {
    child,
    pid: child.pid!,
    go: () => child.stdin!.write('go\n'),
    output: () => out,
    leaked,
    untilLeaked: (n) => until(() => leaked() >= n, `it leaked ${n} times`),
  };
}

/** Ends a server we started: SIGTERM (it ends its own workers), SIGKILL after 5 s. */
export async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid, 'SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  stop(child);
}

export function stop(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.pid) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `leakscope attach ARGS` (test/support/cli.ts) and waits for it. */
export function runAttach(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawnCli(['attach', ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 45000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export function parseReport(r: CliRun): AnalysisResult {
  try {
    return JSON.parse(r.stdout) as AnalysisResult;
  } catch {
    throw new Error(`attach did not print a JSON report (exit ${r.code}); stderr:\n${r.stderr}\nstdout:\n${r.stdout.slice(0, 2000)}`);
  }
}

/** Starts attach; resolves `started` once it traces (its targets' probes are all attached:
 *  "leakscope: tracing" is printed after that), `done` with its output at the end. */
export function attachInBackground(args: string[]): { pid: number; started: Promise<void>; done: Promise<CliRun>; stdout(): string; stderr(): string } {
  const child = spawnCli(['attach', ...args]);
  let stdout = '';
  let stderr = '';
  let startedResolve!: () => void;
  const started = new Promise<void>((r) => (startedResolve = r));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('leakscope: tracing')) startedResolve();
  });
  const done = new Promise<CliRun>((resolve) => child.on('exit', (code) => { startedResolve(); resolve({ code: code ?? -1, stdout, stderr }); }));
  return { pid: child.pid!, started, done, stdout: () => stdout, stderr: () => stderr };
}

/** Polls `test` every 50 ms until it holds (a readiness condition, not a time guess). */
export async function until(test: () => boolean, what: string, timeoutMs = 60000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/** The trace's t = 0 on CLOCK_MONOTONIC, process.hrtime's clock (its header is written first,
 *  as attach starts): a test's own moments put on the trace's timeline. */
export async function traceStart(path: string): Promise<bigint> {
  const { meta } = await readTrace(path, { event() {} }, { onWarning() {} });
  return BigInt(meta.startMonoNs!);
}

/** Reads the trace attach is writing (it reaches the file at least once a second) until what
 *  the tracer saw is enough: a readiness signal from the tracer itself, not a time guess. Each
 *  reading starts a fresh count (`count()` makes one); a chunk being written is skipped. */
export async function untilTrace(path: string, count: () => { event(e: Event): void; enough(): boolean }, what: string, timeoutMs = 120000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = count();
    await readTrace(path, c, { onWarning() {} });
    if (c.enough()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for the trace to hold ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Counts rounds of pool-size samples (one t per round) taken from `sinceNs` on. */
export function poolSampleRounds(sinceNs: number, rounds: number): () => { event(e: Event): void; enough(): boolean } {
  return () => {
    const ts = new Set<number>();
    return { event: (e) => { if (e.kind === 'pool-size' && e.t >= sinceNs) ts.add(e.t); }, enough: () => ts.size >= rounds };
  };
}
