// The agent's HTTP endpoint: /metrics, /debug/pprof/heap, the live report at / and /healthz.
// Secure by default: loopback unless told otherwise, and a non-loopback address needs a bearer
// token or TLS (or an explicit --insecure). The agent binds the socket (as root it may take any
// port) and hands it to its HTTP side, web.ts, started as `user:` (nobody by default), which
// parses the requests and asks the agent for the answers; with `user: root` the agent serves
// them itself.

import { fork, type ChildProcess } from 'node:child_process';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createNet, isIP, type Server as NetServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import type { AgentConfig } from './config.js';
import { requestHandler, tokenDigest, type Answer, type Query, type Route } from './http-handler.js';
import type { WebInit } from './web.js';
import type { Log } from './log.js';

export interface Routes {
  answer(route: Route, q: Query, accept: string | undefined): Promise<Answer>;
  targets(): string[];
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** Refuses an address others can reach unless requests are authenticated or the user said so. */
export function checkExposure(cfg: Pick<AgentConfig, 'listen' | 'token' | 'tls' | 'insecure'>): void {
  if (isLoopback(cfg.listen.host)) return;
  if (cfg.token || cfg.tls || cfg.insecure) return;
  throw new UserError(`refusing to listen on ${cfg.listen.host}:${cfg.listen.port} without authentication: set a bearer token (--token-file, auth.bearerTokenFile) or TLS (--tls-cert/--tls-key), or say --insecure`);
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`${path}: cannot read the TLS ${what} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** uid and gid of a user, from /etc/passwd. */
export function userIds(name: string): { uid: number; gid: number } {
  let text = '';
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // no passwd file: only numeric ids below
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  throw new UserError(`user "${name}" (the agent's HTTP side runs as it): no such user; set user: to an existing unprivileged user`);
}

/** web.ts beside this file, .ts or .js as this one is. */
const WEB_ENTRY = join(dirname(fileURLToPath(import.meta.url)), `web${extname(fileURLToPath(import.meta.url))}`);

export class AgentServer {
  private inProcess: HttpServer | undefined;
  private web: ChildProcess | undefined;
  private stopping = false;
  private crashes = 0;
  /** The user the HTTP side runs as (uid), once it is up. */
  webUid: number | undefined;

  constructor(private readonly cfg: AgentConfig, private readonly routes: Routes, private readonly log: Log) {}

  private tls(): { cert: string; key: string } | undefined {
    return this.cfg.tls ? { cert: readPem(this.cfg.tls.cert, 'certificate'), key: readPem(this.cfg.tls.key, 'key') } : undefined;
  }

  private bind(port: number): Promise<NetServer> {
    const { host } = this.cfg.listen;
    const srv = createNet();
    return new Promise((resolve, reject) => {
      srv.once('error', (err: NodeJS.ErrnoException) => {
        reject(new UserError(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.code === 'EACCES' ? 'permission denied' : err.message}`));
      });
      srv.listen(port, host, () => resolve(srv));
    });
  }

  /** Listens; resolves with the port (the one asked for, or the kernel's pick for 0). */
  async listen(): Promise<number> {
    checkExposure(this.cfg);
    const tls = this.tls();
    if (this.cfg.user === 'root') {
      const handler = requestHandler({ tokenHash: this.cfg.token ? tokenDigest(this.cfg.token) : undefined, targets: this.routes.targets(), ask: (r, q, a) => this.routes.answer(r, q, a) });
      const srv = tls ? createHttps(tls, handler) : createHttp(handler);
      const net = await this.bind(this.cfg.listen.port);
      // the handle moves to the HTTP server: one listening socket
      await new Promise<void>((resolve) => srv.listen(net, () => resolve()));
      this.inProcess = srv;
      const a = net.address();
      return typeof a === 'object' && a ? a.port : this.cfg.listen.port;
    }
    const ids = userIds(this.cfg.user);
    if (ids.uid === 0) throw new UserError(`user "${this.cfg.user}" is root: say user: root to serve from the agent itself`);
    const net = await this.bind(this.cfg.listen.port);
    const a = net.address();
    const port = typeof a === 'object' && a ? a.port : this.cfg.listen.port;
    try {
      await this.startWeb(net, ids, tls);
    } finally {
      // the web process holds its own copy of the socket
      net.close();
    }
    return port;
  }

  private startWeb(net: NetServer, ids: { uid: number; gid: number }, tls: { cert: string; key: string } | undefined): Promise<void> {
    const child = fork(WEB_ENTRY, [], {
      uid: ids.uid, gid: ids.gid,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      // the package's root: where `--import tsx` (tests) is resolved from
      cwd: join(dirname(WEB_ENTRY), '..', '..'),
      // tsx (tests) must not write a transform cache as that user
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TSX_DISABLE_CACHE: '1', NODE_OPTIONS: '' },
    });
    this.web = child;
    child.on('message', (m: { type: string; id?: number; route?: Route; q?: Query; accept?: string }) => {
      if (m.type !== 'ask' || m.id === undefined || !m.route) return;
      this.routes.answer(m.route, m.q ?? {}, m.accept)
        .catch((err: unknown): Answer => ({ status: 500, type: 'text/plain; charset=utf-8', body: `internal error: ${(err as Error).message.split('\n')[0]}\n` }))
        .then((answer) => { if (child.connected) child.send({ type: 'answer', id: m.id, answer }); });
    });
    const port = (net.address() as { port: number }).port;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new UserError(`the HTTP side did not start as user ${this.cfg.user} (can that user read ${WEB_ENTRY}?)`)); }, 20_000);
      const onReady = (m: { type: string; uid?: number; message?: string }): void => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          child.off('message', onReady);
          this.webUid = m.uid;
          child.on('exit', (code, sig) => void this.webExited(port, ids, code, sig));
          resolve();
        } else if (m.type === 'error') {
          clearTimeout(timer);
          reject(new UserError(`the HTTP side cannot serve: ${m.message}`));
        }
      };
      child.on('message', onReady);
      child.once('exit', (code) => { clearTimeout(timer); reject(new UserError(`the HTTP side exited (${code}) before it served; can user ${this.cfg.user} read ${WEB_ENTRY}?`)); });
      child.on('error', (err) => { clearTimeout(timer); reject(new UserError(`cannot start the HTTP side: ${err.message}`)); });
      const init: WebInit = { type: 'init', tokenHash: this.cfg.token ? tokenDigest(this.cfg.token).toString('hex') : undefined, tls, targets: this.routes.targets() };
      child.send(init, net);
    });
  }

  /** The HTTP side died: bind again and start another (a few times, a second apart). */
  private async webExited(port: number, ids: { uid: number; gid: number }, code: number | null, sig: NodeJS.Signals | null): Promise<void> {
    if (this.stopping) return;
    this.log.warn(`the HTTP side exited (${sig ?? code}); starting it again`);
    if (++this.crashes > 5) {
      this.log.warn('the HTTP side keeps exiting: not serving any more');
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const net = await this.bind(port);
      try {
        await this.startWeb(net, ids, this.tls());
      } finally {
        net.close();
      }
    } catch (err) {
      this.log.warn((err as Error).message);
    }
  }

  close(): Promise<void> {
    this.stopping = true;
    const web = this.web;
    if (web && web.exitCode === null && web.signalCode === null) {
      return new Promise((resolve) => {
        web.once('exit', () => resolve());
        web.disconnect();
        setTimeout(() => web.kill('SIGKILL'), 3000).unref();
      });
    }
    return new Promise((resolve) => {
      if (!this.inProcess) return resolve();
      this.inProcess.close(() => resolve());
      this.inProcess.closeAllConnections();
    });
  }
}

