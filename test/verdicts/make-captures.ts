// Makes the real captures of the verdict corpus: Debian apache2 with our module (mod_vd.c, built
// with apxs) under `leakscope run` and `leakscope attach`, Debian nginx with Lua (its debug log,
// and under `run`), and our C server (vd-server.c) under `run`, each driven by a fixed workload.
//
//   node --import tsx test/verdicts/make-captures.ts OUTDIR [NAME...]
//
// writes OUTDIR/NAME.lstrace (or NAME.log for a debug log) for each capture (all by default).
// `npm run bench -- verdicts` with LSBENCH_VERDICTS_FRESH=1 makes them afresh and scores them; the small
// ones the tests read are committed, zstd-compressed, in test/verdicts/captures/.

import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/ports.js';
import { symbolizeTrace } from '../../src/symbols/symbolize.js';
import { readTrace } from '../../src/trace/reader.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));
const programs = join(root, 'test', 'verdicts', 'programs');
const MODULES = '/usr/lib/apache2/modules';

export interface CaptureSpec {
  name: string;
  /** What the capture is, in one line. */
  what: string;
  /** Needs root and eBPF (attach). */
  root?: boolean;
  /** Writes the capture's files into `outDir`; `dir` is a scratch directory. */
  make(dir: string, outDir: string): Promise<void>;
  /** The capture's file names in OUTDIR (.lstrace, or .log for a debug log). */
  files: string[];
}

/** The label of the marker where a capture of a server still running ends (see real.ts). */
export const CUT_MARKER = 'corpus: cut';

// --- helpers ---------------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One request on its own connection; resolves with the body. */
export function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
  });
}

async function drive(port: number, paths: string[]): Promise<void> {
  for (const p of paths) await get(port, p);
}

/** `leakscope ...` from the source tree, as the tests run it. */
function cli(args: string[], opts: { detached?: boolean } = {}): { child: ChildProcess; done: Promise<{ code: number | null; err: string }>; stderr(): string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'], detached: opts.detached,
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; err: string }>((r) => child.on('exit', (code) => r({ code, err })));
  return { child, done, stderr: () => err };
}

/** Attach is tracing once it says so on stderr (every target's probes placed); an attach that
 *  exits before that is an error. */
async function attachReady(att: ReturnType<typeof cli>): Promise<void> {
  await waitFor('attach to trace', () => att.stderr().includes('leakscope: tracing') || att.child.exitCode !== null, 60_000);
  if (att.child.exitCode !== null) throw new Error(`attach exited: ${(await att.done).err}`);
}

async function symbolize(trace: string): Promise<void> {
  await symbolizeTrace(trace);
}

/** `leakscope snapshot PID`; returns once the snapshot's marker is in the trace. */
async function snapshot(pid: number, trace: string): Promise<void> {
  const r = cli(['snapshot', String(pid)]);
  if ((await r.done).code !== 0) throw new Error(`leakscope snapshot ${pid} failed`);
  const end = Date.now() + 20_000;
  for (;;) {
    let seen = false;
    await readTrace(trace, { event: (e) => { if (e.kind === 'marker' && e.pid === pid && /^snapshot #/.test(e.label)) seen = true; } });
    if (seen) break;
    if (Date.now() > end) throw new Error(`no snapshot marker from ${pid} in ${trace}`);
    await sleep(100);
  }
}

/** 0..n-1 in a fixed pseudo-random order (the same every run). */
function keys(n: number, range: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out.push((s >>> 8) % range);
  }
  return out;
}

const times = (n: number, p: string | ((i: number) => string)): string[] => Array.from({ length: n }, (_, i) => (typeof p === 'string' ? p : p(i)));

// --- our C server under `run` ------------------------------------------------------------------

function buildServer(dir: string): string {
  const exe = join(dir, 'vd-server');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', exe, join(programs, 'vd-server.c')]);
  return exe;
}

interface ServerRun {
  flags?: string[];
  traffic: string[];
}

/** Runs the server under `run` into NAME.lstrace; before it quits, asks it for a snapshot (its
 *  marker says where the trace of a server still running ends: the corpus cuts it there too). */
async function serverUnderRun(dir: string, outDir: string, name: string, s: ServerRun): Promise<void> {
  const exe = buildServer(dir);
  const portFile = join(dir, 'port');
  const out = join(outDir, `${name}.lstrace`);
  const run = cli(['run', '--no-summary', '--trace', out, '--', exe, portFile, ...(s.flags ?? [])]);
  const [port, pid] = (await waitFor('the server to listen', () => existsSync(portFile) && readFileSync(portFile, 'utf8'))).trim().split(' ').map(Number) as [number, number];
  await drive(port, s.traffic);
  await snapshot(pid, out);
  await get(port, '/quit');
  await waitFor('the server to exit', () => !alive(pid));
  const r = await run.done;
  if (r.code !== 0) throw new Error(`leakscope run: ${r.code}\n${r.err}`);
  // A daemon outlives `run` (which symbolized when the launcher left): symbolize what it added.
  await symbolize(out);
}

/** A short program under `run`: 1,000 blocks of 64 B kept in a loop, then exit. */
async function shortProgram(dir: string, outDir: string): Promise<void> {
  const exe = join(dir, 'short-program');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', exe, join(programs, 'short-program.c')]);
  const out = join(outDir, 'short-program.lstrace');
  const run = cli(['run', '--no-summary', '--trace', out, '--', exe]);
  const r = await run.done;
  if (r.code !== 0) throw new Error(`leakscope run short-program: ${r.code}\n${r.err}`);
}

// --- apache2 with mod_vd ----------------------------------------------------------------------

function buildModule(dir: string): string {
  copyFileSync(join(programs, 'mod_vd.c'), join(dir, 'mod_vd.c'));
  execFileSync('apxs', ['-c', '-o', 'mod_vd.so', 'mod_vd.c'], { cwd: dir, stdio: 'ignore' });
  return join(dir, '.libs', 'mod_vd.so');
}

function apacheConf(dir: string, port: number, mod: string): string {
  mkdirSync(join(dir, 'htdocs'), { recursive: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(join(dir, 'htdocs', 'index.html'), 'ok\n');
  const conf = join(dir, 'httpd.conf');
  // One child (prefork, no spares): every request reaches the same child, as in the fixture.
  writeFileSync(conf, `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${join(dir, 'httpd.pid')}
ErrorLog ${join(dir, 'logs/error.log')}
LogLevel warn
Mutex file:${join(dir, 'logs')}
User nobody
Group nogroup
LoadModule mpm_prefork_module ${MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule vd_module ${mod}
StartServers 1
MinSpareServers 1
MaxSpareServers 1
ServerLimit 1
MaxRequestWorkers 1
MaxConnectionsPerChild 0
KeepAlive Off
DocumentRoot ${join(dir, 'htdocs')}
<Directory ${join(dir, 'htdocs')}>
  Require all granted
</Directory>
<Location /vd>
  SetHandler vd
</Location>
`);
  return conf;
}

/** /vd/ok and /vd/leak in turn: the child's pool grows 2 KiB a /leak. */
const APACHE_LEAK = times(160, (i) => (i % 2 ? '/vd/leak' : '/vd/ok'));
/** The cache fills with 24 keys in its first 24 requests (a fifth of the traffic) and then only
 *  hits; one long stream; then quiet traffic. */
const APACHE_MIXED = [
  ...times(160, (i) => (i % 2 ? `/vd/cache?k${(i >> 1) % 24}` : '/vd/ok')),
  '/vd/stream?300',
  ...times(60, '/vd/ok'),
];

/** Before the attach: 120 leaks into pchild, the cache filled with all its 24 keys. */
const APACHE_WARMUP = times(240, (i) => (i % 2 ? '/vd/leak' : `/vd/cache?k${(i >> 1) % 24}`));
/** While traced: 80 more leaks, cache hits only, one 300-chunk stream, quiet traffic. */
const APACHE_WARM_TRACED = [
  ...times(160, (i) => (i % 2 ? '/vd/leak' : `/vd/cache?k${(i >> 1) % 24}`)),
  '/vd/stream?300',
  ...times(60, '/vd/ok'),
];

async function stopApache(dir: string): Promise<void> {
  const pid = Number(readFileSync(join(dir, 'httpd.pid'), 'utf8').trim());
  process.kill(pid, 'SIGTERM');
  await waitFor('httpd to stop', () => !alive(pid));
}

async function waitPort(port: number): Promise<void> {
  await waitFor(`port ${port}`, () => spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0);
}

/** apache2 started by `leakscope run`, daemonizing as it does by default (a start-up process
 *  that parses the configuration, forks the parent and exits; the parent forks the child). */
async function apacheUnderRun(dir: string, outDir: string, name: string, traffic: string[]): Promise<void> {
  const out = join(outDir, `${name}.lstrace`);
  chmodSync(dir, 0o755); // the child runs as nobody
  const mod = buildModule(dir);
  const port = await freePort();
  const conf = apacheConf(dir, port, mod);
  const run = cli(['run', '--no-summary', '--trace', out, '--', '/usr/sbin/apache2', '-f', conf], { detached: true });
  const r = await run.done; // the start-up process leaves once the server is detached
  if (r.code !== 0) throw new Error(`leakscope run apache2: ${r.code}\n${r.err}`);
  await waitPort(port);
  await drive(port, traffic);
  await stopApache(dir);
  await symbolize(out);
}

/** apache2 traced by `leakscope attach --exe` (a private copy of the binary) from before it
 *  starts, so its start-up is traced too; the trace ends while the server still runs. */
async function apacheUnderAttach(dir: string, outDir: string, name: string, traffic: string[]): Promise<void> {
  const out = join(outDir, `${name}.lstrace`);
  chmodSync(dir, 0o755);
  const mod = buildModule(dir);
  const exe = join(dir, 'apache2');
  copyFileSync('/usr/sbin/apache2', exe);
  const port = await freePort();
  const conf = apacheConf(dir, port, mod);
  const att = cli(['attach', '--exe', exe, '--allocator', 'apr', '--pool-allocs', '--no-report', '-o', out]);
  await attachReady(att);
  const start = spawnSync(exe, ['-f', conf], { env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOG_DIR: join(dir, 'logs') } });
  if (start.status !== 0) throw new Error(`apache2: ${start.stderr}`);
  let attached: Awaited<typeof att.done>;
  try {
    await waitPort(port);
    // The child is traced once attach has seen it: a few requests and a pause first, so the
    // workload itself is traced whole (these are part of the child's start-up).
    await drive(port, times(10, '/vd/ok'));
    await sleep(2000);
    await drive(port, traffic);
    await sleep(500);
  } finally {
    att.child.kill('SIGINT');
    attached = await att.done;
    await stopApache(dir);
  }
  if (attached.code !== 0) throw new Error(`leakscope attach: ${attached.code}\n${attached.err}`);
  await symbolize(out); // while the module's file is there
}

/** apache2 started untraced and warmed up (the module's leak into pchild, the cache filled),
 *  then traced by `leakscope attach --pid PARENT --children`: pchild, the cache pool and the
 *  connection pool are alive before the attach, so only the discovery walk finds them (`found`);
 *  the trace sees pchild go on growing, the cache only hit, one long stream. */
async function apacheAttachWarm(dir: string, outDir: string): Promise<void> {
  const out = join(outDir, 'apache-attach-warm.lstrace');
  chmodSync(dir, 0o755);
  const mod = buildModule(dir);
  const port = await freePort();
  const conf = apacheConf(dir, port, mod);
  const start = spawnSync('/usr/sbin/apache2', ['-f', conf], { env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOG_DIR: join(dir, 'logs') } });
  if (start.status !== 0) throw new Error(`apache2: ${start.stderr}`);
  try {
    await waitPort(port);
    await drive(port, APACHE_WARMUP);
    const parent = Number(readFileSync(join(dir, 'httpd.pid'), 'utf8').trim());
    const att = cli(['attach', '--pid', String(parent), '--children', '--allocator', 'apr', '--pool-allocs', '--no-report', '-o', out]);
    try {
      await attachReady(att);
      await drive(port, APACHE_WARM_TRACED);
    } finally {
      att.child.kill('SIGINT');
    }
    const r = await att.done;
    if (r.code !== 0) throw new Error(`leakscope attach: ${r.code}\n${r.err}`);
  } finally {
    await stopApache(dir);
  }
  await symbolize(out);
}

// --- nginx with Lua ---------------------------------------------------------------------------

const LUA = `local _M = {}
local kept = {}

function _M.leak()
  -- 16 KiB a request kept in a module-level table: LuaJIT's heap grows by new chunks
  kept[#kept + 1] = string.rep("k", 16384) .. ngx.var.arg_i
  ngx.say("ok")
end

function _M.regex()
  -- "o": compiled once and cached by the worker, in the cycle pool (lua_regex_cache_max_entries)
  ngx.re.match("abc", "a" .. (ngx.var.arg_i or "") .. "?b", "o")
  ngx.say("ok")
end

function _M.churn()
  local t = {}
  for i = 1, 200 do t[i] = { i, tostring(i) } end
  ngx.say(#t)
end

return _M
`;

function nginxConf(dir: string, port: number, opts: { debugLog?: string }): string {
  chmodSync(dir, 0o755); // the worker runs as nobody and reads vd.lua
  mkdirSync(join(dir, 'logs'), { recursive: true });
  writeFileSync(join(dir, 'vd.lua'), LUA);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${opts.debugLog ?? join(dir, 'logs/error.log')} ${opts.debugLog ? 'debug' : 'warn'};
events { worker_connections 256; accept_mutex on; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'cb')}; proxy_temp_path ${join(dir, 'px')}; fastcgi_temp_path ${join(dir, 'fc')};
  uwsgi_temp_path ${join(dir, 'uw')}; scgi_temp_path ${join(dir, 'sc')};
  lua_package_path "${dir}/?.lua;;";
  server {
    listen 127.0.0.1:${port};
    location /ok { return 200 "ok\\n"; }
    location /leak { content_by_lua_block { require("vd").leak() } }
    location /re { content_by_lua_block { require("vd").regex() } }
    location /churn { content_by_lua_block { require("vd").churn() } }
  }
}
`);
  return conf;
}

async function stopNginx(dir: string): Promise<void> {
  const pid = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
  process.kill(pid, 'SIGQUIT');
  await waitFor('nginx to stop', () => !alive(pid));
}

/** Lua churn all along; a leak into a Lua table; late, 60 new regexes compiled once and cached
 *  by the worker in its cycle pool (a few more 16 KiB blocks of it). */
const NGINX_TRAFFIC = [
  ...times(300, (i) => (i % 3 === 0 ? `/leak?i=${i}` : i % 3 === 1 ? '/churn' : '/ok')),
  ...times(60, (i) => `/re?i=${i}`),
  ...times(30, '/ok'),
];

/** Debian nginx (daemonizing, master + 2 workers) writing its debug log. */
async function nginxDebugLog(dir: string, outDir: string): Promise<void> {
  const out = join(outDir, 'nginx-lua-debug.log');
  const port = await freePort();
  const conf = nginxConf(dir, port, { debugLog: out });
  const start = spawnSync('/usr/sbin/nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'logs/error.log')]);
  if (start.status !== 0) throw new Error(`nginx: ${start.stderr}`);
  try {
    await waitPort(port);
    await drive(port, NGINX_TRAFFIC);
  } finally {
    await stopNginx(dir);
  }
}

/** The same nginx under `leakscope run` (daemonizing: the launcher leaves at once); a marker
 *  before it stops says where the trace of a server still running ends. */
async function nginxUnderRun(dir: string, outDir: string): Promise<void> {
  const out = join(outDir, 'nginx-lua-run.lstrace');
  const port = await freePort();
  const conf = nginxConf(dir, port, {});
  const run = cli(['run', '--no-summary', '--trace', out, '--', '/usr/sbin/nginx', '-p', dir, '-c', conf, '-e', join(dir, 'logs/error.log')], { detached: true });
  const r = await run.done;
  if (r.code !== 0) throw new Error(`leakscope run nginx: ${r.code}\n${r.err}`);
  await waitPort(port);
  await drive(port, NGINX_TRAFFIC);
  // nginx gives its workers a clean environment and its own signal handlers: a marker written by
  // `leakscope mark` (not a recorder snapshot) says where the running server's trace ends.
  const master = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
  const m = cli(['mark', String(master), CUT_MARKER, '--trace', out]);
  if ((await m.done).code !== 0) throw new Error('leakscope mark failed');
  await stopNginx(dir);
  await symbolize(out);
}

// --- the captures -----------------------------------------------------------------------------

const CHURN = (n: number) => times(n, '/churn');

export const CAPTURES: CaptureSpec[] = [
  {
    name: 'short-program', files: ['short-program.lstrace'], what: 'a short program under run: 1,000 blocks of 64 B kept in a loop, then exit',
    make: (d, o) => shortProgram(d, o),
  },
  {
    name: 'srv-slow-leak', files: ['srv-slow-leak.lstrace'], what: 'vd-server under run: 48 B kept per request under 40 allocations of up to 8 KiB churned per request',
    make: (d, o) => serverUnderRun(d, o, 'srv-slow-leak', { flags: ['-c', '40'], traffic: times(400, '/leak') }),
  },
  {
    name: 'srv-late-leak', files: ['srv-late-leak.lstrace'], what: 'vd-server under run: churn only for 250 requests, then a leak in every request for 250 more',
    make: (d, o) => serverUnderRun(d, o, 'srv-late-leak', { traffic: [...CHURN(250), ...times(250, '/leak')] }),
  },
  {
    name: 'srv-sawtooth', files: ['srv-sawtooth.lstrace'], what: 'vd-server under run: a batch of 1 KiB entries freed whole every 120 requests (4 teeth)',
    make: (d, o) => serverUnderRun(d, o, 'srv-sawtooth', { traffic: times(500, '/saw?120') }),
  },
  {
    name: 'srv-step', files: ['srv-step.lstrace'], what: 'vd-server under run: churn, a 256 KiB table made once half-way, churn; freed at exit',
    make: (d, o) => serverUnderRun(d, o, 'srv-step', { traffic: [...CHURN(250), '/step', ...CHURN(250)] }),
  },
  {
    name: 'srv-lru', files: ['srv-lru.lstrace'], what: 'vd-server under run, -k: an LRU of 144 entries of 2 KiB over 1,000 keys, full after ~155 of 600 requests, then evicting; kept at exit',
    make: (d, o) => serverUnderRun(d, o, 'srv-lru', { flags: ['-k'], traffic: keys(600, 1000, 7).map((k) => `/lru?${k}`) }),
  },
  {
    name: 'srv-daemon', files: ['srv-daemon.lstrace'], what: 'vd-server -d under run: the launcher forks and leaves; the daemon leaks 48 B in one request of three',
    make: (d, o) => serverUnderRun(d, o, 'srv-daemon', { flags: ['-d'], traffic: times(450, (i) => (i % 3 ? '/churn' : '/leak')) }),
  },
  {
    name: 'apache-run-leak', files: ['apache-run-leak.lstrace'], what: 'apache2 + mod_vd under run (daemonizing, one child): /vd/leak puts 2 KiB a request into pchild',
    make: (d, o) => apacheUnderRun(d, o, 'apache-run-leak', APACHE_LEAK),
  },
  {
    name: 'apache-run-mixed', files: ['apache-run-mixed.lstrace'], what: 'apache2 + mod_vd under run: a cache that fills then holds, one 300-chunk stream on one connection, quiet traffic',
    make: (d, o) => apacheUnderRun(d, o, 'apache-run-mixed', APACHE_MIXED),
  },
  {
    name: 'apache-attach-leak', files: ['apache-attach-leak.lstrace'], root: true, what: 'apache2 + mod_vd under attach --exe --allocator apr --pool-allocs from before its start: the pchild leak',
    make: (d, o) => apacheUnderAttach(d, o, 'apache-attach-leak', APACHE_LEAK),
  },
  {
    name: 'apache-attach-mixed', files: ['apache-attach-mixed.lstrace'], root: true, what: 'apache2 + mod_vd under attach: the cache, the stream, quiet traffic; the trace ends with the server running',
    make: (d, o) => apacheUnderAttach(d, o, 'apache-attach-mixed', APACHE_MIXED),
  },
  {
    name: 'apache-attach-warm', files: ['apache-attach-warm.lstrace'], root: true, what: 'apache2 + mod_vd warmed up untraced (pchild leaking, the cache filled), then attach --pid --children: pools found alive at attach',
    make: (d, o) => apacheAttachWarm(d, o),
  },
  {
    name: 'nginx-lua-debug', files: ['nginx-lua-debug.log'], what: 'Debian nginx + Lua (daemonizing, one worker), its debug log: Lua churn, a Lua-table leak (invisible to the log), late regexes cached in the cycle pool',
    make: (d, o) => nginxDebugLog(d, o),
  },
  {
    name: 'nginx-lua-run', files: ['nginx-lua-run.lstrace'], what: 'the same nginx + Lua workload under run',
    make: (d, o) => nginxUnderRun(d, o),
  },
];

export async function makeCapture(spec: CaptureSpec, outDir: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), `leakscope-vd-${spec.name}-`));
  const outs = spec.files.map((f) => join(outDir, f));
  for (const o of outs) rmSync(o, { force: true });
  try {
    await spec.make(dir, outDir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return outs;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [outDir, ...names] = process.argv.slice(2);
  if (!outDir) {
    console.error('usage: make-captures.ts OUTDIR [NAME...]');
    process.exit(2);
  }
  mkdirSync(outDir, { recursive: true });
  for (const spec of CAPTURES.filter((c) => names.length === 0 || names.includes(c.name))) {
    const t0 = Date.now();
    const paths = await makeCapture(spec, outDir);
    console.log(`${spec.name}: ${paths.join(', ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
}
