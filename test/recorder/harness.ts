// Shared by the recorder tests: builds the recorder and the test programs, runs `leakscope run`
// from source, and reads traces.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnalysisResult, ProcessReport, SiteReport } from '../../src/analyses/result.js';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { testDir } from '../support/tmp.js';

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
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: opts.cwd ?? root,
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeout ?? 60_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
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

/** Streams a trace's events to visit (nothing held), in constant memory. */
export async function scanTrace(path: string, visit: (e: Event) => void): Promise<{ warnings: string[]; events: number }> {
  let n = 0;
  const r = await readTrace(path, { event: (e) => { n++; visit(e); } });
  return { warnings: r.warnings, events: n };
}

/** Polls fn until it gives a value; fails naming what it waited for. */
export async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 10_000): Promise<T> {
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
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), 'run', ...args], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}
