// The one way tests run the leakscope CLI: its real entry point (src/cli/main.ts, every command
// registered as users get them) through tsx's loader, in a child process. Synchronous for the
// simple cases, asynchronous when the test must do something while it runs (or when several
// run at once), spawned when the test talks to a long-running command.
import { execFile, spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_MAIN = join(root, 'src/cli/main.ts');
/** tsx's loader by absolute URL: the CLI can then run from any working directory. */
export const TSX = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

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
  /** A shell prefix run before exec'ing node (e.g. `ulimit -v ...`); the arguments stay "$@". */
  shell?: string;
}

export interface CliResult {
  /** Exit status; 128 + the signal's number when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes (binary outputs written to `-o -`). */
  stdoutBytes: Buffer;
}

export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, CI: '1', ...env };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

/** The program and arguments that run `leakscope ARGS`. */
export function cliCommand(args: string[], opts: CliOptions = {}): [string, string[]] {
  const nodeArgs = ['--import', TSX, ...(opts.nodeArgs ?? []), opts.main ?? CLI_MAIN, ...args];
  return opts.shell ? ['sh', ['-c', `${opts.shell}; exec "$0" "$@"`, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
}

function codeOf(status: number | null, signal: NodeJS.Signals | null): number {
  if (status !== null) return status;
  return 128 + (signal ? constants.signals[signal] ?? 0 : 0);
}

/** Runs `leakscope ARGS` to its end. */
export function cliSync(args: string[], opts: CliOptions = {}): CliResult {
  const [file, argv] = cliCommand(args, opts);
  const r = spawnSync(file, argv, {
    cwd: opts.cwd ?? root, env: cliEnv(opts.env), input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 << 20,
  });
  return { code: codeOf(r.status, r.signal), stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout };
}

/** Runs `leakscope ARGS` without blocking the test's event loop. */
export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const [file, argv] = cliCommand(args, opts);
  return new Promise((resolve) => {
    const child = execFile(file, argv, {
      cwd: opts.cwd ?? root, env: cliEnv(opts.env), maxBuffer: 256 << 20, timeout: opts.timeoutMs ?? 120_000, encoding: 'buffer',
    }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      const code = !e ? 0 : typeof e.code === 'number' ? e.code : codeOf(null, e.signal ?? null);
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString(), stdoutBytes: stdout });
    });
    child.stdin?.on('error', () => {}); // the CLI may exit before reading all its input
    child.stdin?.end(opts.input);
  });
}

/** Starts `leakscope ARGS` (a long-running command: run, attach, kernel, report of a FIFO). */
export function spawnCli(args: string[], opts: CliOptions & { stdio?: StdioOptions } = {}): ChildProcess {
  const [file, argv] = cliCommand(args, opts);
  return spawn(file, argv, { cwd: opts.cwd ?? root, env: cliEnv(opts.env), stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
}

/** Resolves with the exit code (128 + signal) once the child has exited. */
export function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(codeOf(child.exitCode, child.signalCode));
  return new Promise((resolve) => child.once('exit', (c, s) => resolve(codeOf(c, s))));
}
