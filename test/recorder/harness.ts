// Shared by the recorder tests: builds the recorder and the test programs, runs `leakscope run`
// from source, and reads traces.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnalysisResult, ProcessReport, SiteReport } from '../../src/analyses/result.js';
import type { Event, Frame } from '../../src/model/events.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { readTrace } from '../../src/trace/reader.js';
import { testDir } from '../support/tmp.js';
import { cliSync, spawnCli } from '../support/cli.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const programs = join(root, 'test', 'programs');

let built = false;
/** Builds native/recorder (a no-op when up to date). */
export function buildRecorder(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', join(root, 'native', 'recorder')], { stdio: 'inherit' });
  built = true;
}

/** A directory for a test file's programs and traces, removed when its tests pass. */
export function workDir(name: string): string {
  return testDir(`leakscope-rec-${name}`);
}

/** Compiles test/programs/<name>.c the way distributions build: -O2, no frame pointers. */
export function compile(dir: string, name: string, extra: string[] = [], as = name): string {
  const out = join(dir, as);
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', out, join(programs, `${name}.c`), ...extra]);
  return out;
}

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function leakscope(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeout?: number } = {}): CliRun {
  // Only a hang should reach the timeout, not a loaded machine.
  const r = cliSync(args, { cwd: opts.cwd, env: opts.env, timeoutMs: opts.timeout ?? 180_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** `leakscope run --format json -o TRACE -- CMD...`: the exit status and the parsed analysis. */
export function runJson(trace: string, cmd: string[], extra: string[] = [], env: Record<string, string> = {}): { run: CliRun; result: AnalysisResult } {
  const run = leakscope(['run', '--format', 'json', '-o', trace, ...extra, '--', ...cmd], { env });
  let result: AnalysisResult;
  try {
    result = JSON.parse(run.stdout) as AnalysisResult;
  } catch {
    throw new Error(`leakscope run printed no JSON (status ${run.status}):\n${run.stderr}\n${run.stdout.slice(0, 2000)}`);
  }
  return { run, result };
}

/** Sites of a process whose stack names `fn`. */
export function sitesWith(p: ProcessReport, fn: string): SiteReport[] {
  return p.sites.filter((s) => s.stack.some((f) => f.fn === fn));
}

export function processWith(r: AnalysisResult, fn: string): ProcessReport[] {
  return r.processes.filter((p) => sitesWith(p, fn).length > 0);
}

/** Most events a test may hold in an array: a bigger trace is streamed (scanTrace). */
export const MAX_HELD_EVENTS = 200_000;

/** Every event of a small trace, in an array; fails on a trace too big to hold. */
export async function traceEvents(path: string): Promise<{ events: Event[]; warnings: string[]; meta: Record<string, unknown> }> {
  const events: Event[] = [];
  const r = await readTrace(path, {
    event: (e) => {
      if (events.length >= MAX_HELD_EVENTS) throw new Error(`${path}: more than ${MAX_HELD_EVENTS} events: stream it with scanTrace`);
      events.push(e);
    },
  });
  return { events, warnings: r.warnings, meta: r.meta as unknown as Record<string, unknown> };
}

/** Each allocation of a small trace with its whole recorded stack (leaf first), as the recorder
 *  wrote it: the analyses group sites by label, so a test of the stacks themselves reads these. */
export async function allocStacks(path: string): Promise<{ pid: number; size: number; frames: Frame[] }[]> {
  const { events } = await traceEvents(path);
  const tables = new SymbolTables();
  for (const e of events) {
    if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
    else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
  }
  // Resolved once every definition is read: run appends the frames' symbols after the events.
  return events.flatMap((e) => (e.kind === 'alloc' ? [{ pid: e.pid, size: e.size, frames: tables.scope(e.pid).stackFrames(e.stack) }] : []));
}

/** Streams a trace's events to visit (nothing held), in constant memory. */
export async function scanTrace(path: string, visit: (e: Event) => void): Promise<{ warnings: string[]; events: number }> {
  let n = 0;
  const r = await readTrace(path, { event: (e) => { n++; visit(e); } });
  return { warnings: r.warnings, events: n };
}

/** Polls fn until it gives a value; fails naming what it waited for. The bound is only there to
 *  end a broken test: a loaded shared machine (load average 25) took over 10 s to start
 *  `leakscope run` from source and its program, so it is generous. */
export async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `leakscope run` as a child that the test drives while it runs; its output so far. */
export function spawnRun(args: string[], env: Record<string, string> = {}): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawnCli(['run', ...args], { env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}
