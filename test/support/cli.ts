// Runs the real CLI from source (tsx), as users run it, for tests of exit codes, stderr lines and
// output files. `cli()` waits for the end; `spawnCli()` gives the running child.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const mainTs = join(root, 'src/cli/main.ts');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

/** node and its arguments for running the CLI with `args`. */
export function cliArgv(args: string[], nodeArgs: string[] = []): [string, string[]] {
  return [process.execPath, ['--import', tsx, ...nodeArgs, mainTs, ...args]];
}

export interface CliRun { code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string; /** Peak RSS (KiB) when asked for. */ rssKiB?: number; ms: number }

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  timeoutMs?: number;
  /** A shell prefix run before exec'ing node (same pid): `ln -s ... .x.$$.tmp`, `ulimit ...`. */
  shell?: string;
  nodeArgs?: string[];
  /** Measure the CLI's peak RSS. */
  rss?: boolean;
}

// Records the peak RSS of the CLI process (KiB) into $LS_RSS_FILE at exit.
const rssProbe = `data:text/javascript,${encodeURIComponent(
  "import {writeFileSync} from 'node:fs'; process.on('exit', () => { if (process.env.LS_RSS_FILE) writeFileSync(process.env.LS_RSS_FILE, String(process.resourceUsage().maxRSS)); });",
)}`;
let rssFiles = 0;

export function cli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', ...opts.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const rssFile = opts.rss ? join(tmpdir(), `ls-rss-${process.pid}-${rssFiles++}`) : undefined;
  if (rssFile) env.LS_RSS_FILE = rssFile;
  const [node, argv] = cliArgv(args, [...(opts.nodeArgs ?? []), ...(rssFile ? ['--import', rssProbe] : [])]);
  const t0 = Date.now();
  const [file, fileArgs] = opts.shell ? ['sh', ['-c', `${opts.shell}; exec "$0" "$@"`, node, ...argv]] : [node, argv];
  return new Promise((resolve) => {
    const child = execFile(file, fileArgs, { cwd: opts.cwd ?? root, env, maxBuffer: 256 << 20, timeout: opts.timeoutMs ?? 120_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals }) | null;
        let rssKiB: number | undefined;
        if (rssFile && existsSync(rssFile)) {
          rssKiB = Number(readFileSync(rssFile, 'utf8'));
          rmSync(rssFile, { force: true });
        }
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, signal: e?.signal ?? null, stdout, stderr, rssKiB, ms: Date.now() - t0 });
      });
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input);
  });
}

export function spawnCli(args: string[], opts: SpawnOptions = {}): ChildProcess {
  const [node, argv] = cliArgv(args);
  return spawn(node, argv, { cwd: root, ...opts, env: { ...process.env, CI: '1', ...opts.env } });
}

/** Polls `check` every 20 ms until it is true (or throws after `ms`). */
export async function until(check: () => boolean, ms = 60_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
