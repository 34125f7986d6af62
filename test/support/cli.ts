// The one way tests run the leakscope CLI: its real entry point (src/cli/main.ts, every command
// registered as users get them) through tsx's loader, in a child process; under `npm test`, which
// builds dist/ from the sources first (LEAKSCOPE_TEST_BUILT=1), the built entry point users run
// (a third of the start-up cost, paid by hundreds of commands in the suite). Synchronous for the
// simple cases, asynchronous when the test must do something while it runs (or when several
// run at once), spawned when the test talks to a long-running command.
import { execFile, spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_MAIN = join(root, 'src/cli/main.ts');
/** tsx's loader by absolute URL: the CLI can then run from any working directory. */
export const TSX = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
/** The built entry point, when the test runner has just built it from these sources. */
const BUILT_MAIN = process.env.LEAKSCOPE_TEST_BUILT === '1' ? join(root, 'dist/cli/main.js') : undefined;

export interface CliOptions {
  cwd?: string;
  /** Added to the test's environment (with CI=1: no progress bars); undefined removes a variable. */
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  /** Killed after this long (default 120 s): a hung command fails its test, not the suite. */
  timeoutMs?: number;
  /** Another entry point: a copy of the sources (test/cli/lazy-load.test.ts). */
  main?: string;
  /** More node options before the entry point (e.g. another --import). */
  nodeArgs?: string[];
  /** A shell prefix run before exec'ing node (e.g. `ulimit -v ...`, `ln -s ... .x.$$.tmp`: the
   *  same pid); the arguments stay "$@". */
  shell?: string;
  /** Measure the CLI's peak RSS (CliResult.rssKiB). */
  rss?: boolean;
}

export interface CliResult {
  /** Exit status; 128 + the signal's number when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (binary outputs written to `-o -`). */
  stdoutBytes: Buffer;
  /** Wall time of the command (ms). */
  ms: number;
  /** Peak RSS of the CLI process (KiB), when asked for with `rss`. */
  rssKiB?: number;
}

export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, CI: '1', ...env };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

// Records the CLI process's peak RSS (KiB) into $LS_RSS_FILE as it exits.
const RSS_PROBE = `data:text/javascript,${encodeURIComponent(
  "import {writeFileSync} from 'node:fs'; process.on('exit', () => { if (process.env.LS_RSS_FILE) writeFileSync(process.env.LS_RSS_FILE, String(process.resourceUsage().maxRSS)); });",
)}`;
let rssFiles = 0;

/** With `rss`: the options that make the CLI report its peak RSS, and how to read it afterwards. */
function rssProbe(opts: CliOptions): { opts: CliOptions; read(): number | undefined } {
  if (!opts.rss) return { opts, read: () => undefined };
  const file = join(tmpdir(), `ls-rss-${process.pid}-${rssFiles++}`);
  return {
    opts: { ...opts, env: { ...opts.env, LS_RSS_FILE: file }, nodeArgs: [...(opts.nodeArgs ?? []), '--import', RSS_PROBE] },
    read() {
      if (!existsSync(file)) return undefined;
      const kib = Number(readFileSync(file, 'utf8'));
      rmSync(file, { force: true });
      return kib;
    },
  };
}

/** The program and arguments that run `leakscope ARGS`. */
export function cliCommand(args: string[], opts: CliOptions = {}): [string, string[]] {
  const main = opts.main ?? BUILT_MAIN ?? CLI_MAIN;
  const nodeArgs = [...(main.endsWith('.ts') ? ['--import', TSX] : []), ...(opts.nodeArgs ?? []), main, ...args];
  return opts.shell ? ['sh', ['-c', `${opts.shell}; exec "$0" "$@"`, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
}

function codeOf(status: number | null, signal: NodeJS.Signals | null): number {
  if (status !== null) return status;
  return 128 + (signal ? constants.signals[signal] ?? 0 : 0);
}

/** Runs `leakscope ARGS` to its end. */
export function cliSync(args: string[], options: CliOptions = {}): CliResult {
  const rss = rssProbe(options);
  const opts = rss.opts;
  const [file, argv] = cliCommand(args, opts);
  const t0 = Date.now();
  const r = spawnSync(file, argv, {
    cwd: opts.cwd ?? root, env: cliEnv(opts.env), input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 << 20,
  });
  return { code: codeOf(r.status, r.signal), stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout, ms: Date.now() - t0, rssKiB: rss.read() };
}

/** Runs `leakscope ARGS` without blocking the test's event loop. */
export function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const rss = rssProbe(options);
  const opts = rss.opts;
  const [file, argv] = cliCommand(args, opts);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = execFile(file, argv, {
      cwd: opts.cwd ?? root, env: cliEnv(opts.env), maxBuffer: 256 << 20, timeout: opts.timeoutMs ?? 120_000, encoding: 'buffer',
    }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      const code = !e ? 0 : typeof e.code === 'number' ? e.code : codeOf(null, e.signal ?? null);
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString(), stdoutBytes: stdout, ms: Date.now() - t0, rssKiB: rss.read() });
    });
    child.stdin?.on('error', () => {}); // the CLI may exit before reading all its input
    child.stdin?.end(opts.input);
  });
}

/** Starts `leakscope ARGS` (a long-running command: run, attach, kernel, report of a FIFO). */
export function spawnCli(args: string[], opts: CliOptions & { stdio?: StdioOptions; detached?: boolean } = {}): ChildProcess {
  const [file, argv] = cliCommand(args, opts);
  return spawn(file, argv, { cwd: opts.cwd ?? root, env: cliEnv(opts.env), stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'], detached: opts.detached });
}

/** Resolves with the exit code (128 + signal) once the child has exited. */
export function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(codeOf(child.exitCode, child.signalCode));
  return new Promise((resolve) => child.once('exit', (c, s) => resolve(codeOf(c, s))));
}

/** Polls `check` every 20 ms until it is true (or throws after `ms`). */
export async function until(check: () => boolean, ms = 60_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
