// Test servers for attach: Debian's nginx and apache2 with our own configs, prefix dirs under
// os.tmpdir(), ports the kernel picks (test/support/ports.ts). Each runs in the foreground as our child; stop() ends
// exactly the master we started (which ends its own workers).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { root } from './helpers.js';
import { freePort } from '../support/ports.js';

export interface Server {
  master: ChildProcess;
  /** The executable the server runs (a private copy for nginx: --exe then traces only ours). */
  exe: string;
  port: number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port}`);
}

/** The socket inode listening on 127.0.0.1:port (from /proc/net/tcp), if any. */
function listener(port: number): string | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') return f[9];
  }
  return undefined;
}

/** The port answered; make sure it is our server that listens on it (the socket is one of the
 *  master's open files), not a leftover of another run holding the port. */
async function ours(master: ChildProcess, port: number): Promise<void> {
  const inode = listener(port);
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${master.pid}/fd`);
  } catch {
    // exited
  }
  const held = fds.some((fd) => {
    try {
      return readlinkSync(`/proc/${master.pid}/fd/${fd}`) === `socket:[${inode}]`;
    } catch {
      return false;
    }
  });
  if (!inode || !held) throw new Error(`port ${port} is not our server's (${master.exitCode !== null ? 'it exited' : `listener socket ${inode ?? 'none'}`}): is the port taken?`);
}

/** stop(): `signal` (or the one given) to exactly the process we started, SIGKILL after `graceMs`. */
export function stopper(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): (s?: NodeJS.Signals) => Promise<void> {
  return async (s = signal) => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    process.kill(child.pid, s);
    await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs))]);
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  };
}

/** What a test adds to the nginx config: modules to load, locations of the one server. */
export interface NginxExtra {
  modules?: string[];
  locations?: string;
}

/** Writes the nginx config and a copy of /usr/sbin/nginx into dir; start it with startNginx. */
export function prepareNginx(dir: string, port: number, workers = 2, extra: NginxExtra = {}): { exe: string; conf: string } {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  // a small static page (4 KiB) for benchmarks that want a realistic request next to `return 200`
  mkdirSync(join(dir, 'htdocs'), { recursive: true });
  writeFileSync(join(dir, 'htdocs', 'index.html'), `<!doctype html><title>leakscope</title>\n${'<p>0123456789abcdef</p>\n'.repeat(171)}`.slice(0, 4096));
  const exe = join(dir, 'nginx');
  copyFileSync('/usr/sbin/nginx', exe);
  const conf = join(dir, 'nginx.conf');
  const t = (n: string) => join(dir, n);
  writeFileSync(conf, `${(extra.modules ?? []).map((m) => `load_module ${m};\n`).join('')}daemon off;
master_process on;
worker_processes ${workers};
pid ${t('nginx.pid')};
error_log ${t('logs/error.log')};
events { worker_connections 256; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  client_body_temp_path ${t('cb')}; proxy_temp_path ${t('px')}; fastcgi_temp_path ${t('fc')};
  uwsgi_temp_path ${t('uw')}; scgi_temp_path ${t('sc')};
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok\\n"; }
    location /static/ { alias ${t('htdocs')}/; }
${extra.locations ?? ''}  }
}
`);
  return { exe, conf };
}

export async function startNginx(dir: string, port: number, workers = 2, extra: NginxExtra = {}): Promise<Server> {
  const { exe, conf } = prepareNginx(dir, port, workers, extra);
  const master = spawn(exe, ['-p', dir, '-c', conf, '-e', join(dir, 'logs/error.log')], { stdio: 'ignore' });
  await waitForPort(port);
  await ours(master, port);
  return { master, exe, port, stop: stopper(master, 'SIGTERM') };
}

/** `extra`: config lines appended (later directives win: modules, MPM limits). `copyExe`: runs a
 *  private copy of /usr/sbin/apache2 (an --exe target then sees only ours). */
export async function startApache(dir: string, port: number, extra = '', opts: { copyExe?: boolean } = {}): Promise<Server> {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const exe = opts.copyExe ? join(dir, 'apache2') : '/usr/sbin/apache2';
  if (opts.copyExe) copyFileSync('/usr/sbin/apache2', exe);
  mkdirSync(join(dir, 'htdocs'), { recursive: true });
  writeFileSync(join(dir, 'htdocs', 'index.html'), 'ok\n');
  const conf = join(dir, 'httpd.conf');
  writeFileSync(conf, `ServerRoot ${dir}
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${join(dir, 'httpd.pid')}
ErrorLog ${join(dir, 'logs/error.log')}
Mutex file:${join(dir, 'logs')}
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
StartServers 2
MinSpareServers 2
MaxSpareServers 2
MaxRequestWorkers 4
MaxConnectionsPerChild 0
KeepAlive On
KeepAliveTimeout 300
MaxKeepAliveRequests 0
DocumentRoot ${join(dir, 'htdocs')}
<Directory ${join(dir, 'htdocs')}>
  Require all granted
</Directory>
DirectoryIndex index.html
${extra}`);
  const master = spawn(exe, ['-f', conf, '-DFOREGROUND'], {
    stdio: 'ignore',
    env: { ...process.env, APACHE_RUN_DIR: dir, APACHE_LOG_DIR: join(dir, 'logs') },
    // prefork's shutdown signals its whole process group: give it its own
    detached: true,
  });
  await waitForPort(port);
  await ours(master, port);
  return { master, exe, port, stop: stopper(master, 'SIGTERM') };
}

/** Debian apache2 (prefork, 2 children) with our leaking module (test/programs/mod_pool_leak.c,
 *  built with apxs into dir) on /leak and /grow, its leak run for 240 requests before anyone
 *  attaches. `pchild`: each child's pchild address as the module reports it, kept up to date by
 *  `note` (give it the bodies of the requests a test sends). */
export async function startLeakingApache(dir: string): Promise<{ server: Server; pchild: Map<number, string>; note(bodies: string[]): void }> {
  copyFileSync(join(root, 'test/programs/mod_pool_leak.c'), join(dir, 'mod_pool_leak.c'));
  const b = spawnSync('apxs', ['-c', '-Wc,-g', '-o', 'mod_pool_leak.so', 'mod_pool_leak.c'], { cwd: dir, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`apxs: ${b.stdout}${b.stderr}`);
  const port = await freePort();
  const server = await startApache(dir, port, `LoadModule pool_leak_module ${join(dir, '.libs/mod_pool_leak.so')}
<LocationMatch "^/(leak|grow)$">
  SetHandler pool-leak
</LocationMatch>
StartServers 2
MinSpareServers 2
MaxSpareServers 2
MaxRequestWorkers 2
`);
  const pchild = new Map<number, string>();
  const note = (bodies: string[]): void => {
    for (const body of bodies) {
      const m = /^pid (\d+) pchild (?:0x)?([0-9a-f]+)/.exec(body);
      if (m) pchild.set(Number(m[1]), `0x${m[2]}`);
    }
  };
  // 240 requests, 240 KiB in each child's pchild
  for (let i = 0; i < 60; i++) note(await keepaliveBursts(port, 2, ['/leak', '/grow', '/leak']));
  if (pchild.size !== 2) {
    await server.stop();
    throw new Error(`both children should have served the warm-up: ${[...pchild.keys()].join(' ')}`);
  }
  return { server, pchild, note };
}

/** Keepalive connections held open, each sending a request now and then. */
export class HeldConnections {
  private readonly socks: Socket[] = [];
  /** Sockets waiting for a response: the next request goes only after it (no pipelining). */
  private readonly busy = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  responses = 0;

  static async open(port: number, n: number): Promise<HeldConnections> {
    const h = new HeldConnections();
    for (let i = 0; i < n; i++) {
      const s = connect(port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => { s.once('connect', () => resolve()); s.once('error', reject); });
      s.on('data', (d: Buffer) => {
        const n = (d.toString().match(/HTTP\/1\.1 200/g) ?? []).length;
        h.responses += n;
        if (n > 0) h.busy.delete(s);
      });
      s.on('error', () => {});
      h.socks.push(s);
    }
    return h;
  }

  send(): void {
    for (const s of this.socks) {
      if (this.busy.has(s)) continue;
      this.busy.add(s);
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    }
  }

  every(ms: number): void {
    this.send();
    this.timer = setInterval(() => this.send(), ms);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.socks) s.destroy();
  }
}

/** `count` requests with curl, each curl run on its own connection. */
export function curlRequests(port: number, runs: number, perRun: number, path = '/'): void {
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}${path}?[1-${perRun}]`]);
    if (r.status !== 0) throw new Error(`curl failed: ${r.stderr}`);
  }
}

/** The processes whose parent is pid, from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const st = readFileSync(`/proc/${n}/stat`, 'latin1');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out.sort((a, b) => a - b);
}

/** What a process has run, as far as /proc tells: every thread's context switches (a thread
 *  woken to do anything, however little, switches at least once more), and whether a thread is
 *  running or waiting for a CPU (R) or in an uninterruptible wait (D). Undefined once gone. */
function activity(pid: number): { switches: number; busy: boolean } | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let switches = 0;
  let busy = false;
  for (const tid of tasks) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      if (state === 'R' || state === 'D') busy = true;
    } catch {
      // the thread ended
    }
  }
  return { switches, busy };
}

/** Resolves once none of the processes has run at all for three samples in a row (100 ms
 *  apart): no context switch, no thread running, runnable or in a disk wait. The work a test
 *  drove is then over (a request's pool destroyed after its response was read), so a tracer
 *  stopped now saw all of it. On a loaded machine a process waiting for a CPU is runnable, not
 *  quiet (CPU time alone would call it quiet). */
export async function quiescent(pids: number[], timeoutMs = 60000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const read = () => pids.map(activity);
  let last = read();
  let still = 0;
  while (still < 3) {
    if (Date.now() > end) throw new Error(`processes ${pids.join(' ')} never went quiet`);
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    const quiet = now.every((a, i) => a === undefined || (!a.busy && a.switches === last[i]?.switches));
    still = quiet ? still + 1 : 0;
    last = now;
  }
}

/** `conns` keepalive connections at once, each sending the `paths` in turn (one request after
 *  the other's response), then closing. Resolves with every response body. */
export async function keepaliveBursts(port: number, conns: number, paths: string[]): Promise<string[]> {
  const one = () => new Promise<string[]>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const bodies: string[] = [];
    let buf = '';
    let i = 0;
    const next = () => {
      if (i === paths.length) {
        s.end();
        resolve(bodies);
        return;
      }
      s.write(`GET ${paths[i++]} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    };
    s.once('connect', next);
    s.on('error', reject);
    s.setTimeout(10000, () => { s.destroy(); reject(new Error('no response in 10 s')); });
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const head = buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
        if (buf.length < head + 4 + len) return;
        bodies.push(buf.slice(head + 4, head + 4 + len));
        buf = buf.slice(head + 4 + len);
        next();
      }
    });
  });
  return (await Promise.all(Array.from({ length: conns }, one))).flat();
}
