// The agent's HTTP endpoint: /metrics, /debug/pprof/heap, the live report at / and /healthz.
// Secure by default: loopback unless told otherwise, and a non-loopback address needs a bearer
// token or TLS (or an explicit --insecure). Only GET and HEAD; every answer is no-store and
// nosniff; query parameters are checked (a pid is a number, a target one of ours).

import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import { UserError } from '../cli/errors.js';
import type { AgentConfig } from './config.js';

export interface Routes {
  metrics(accept: string | undefined): Promise<{ type: string; body: string }>;
  heap(q: { target?: string; pid?: number }): Promise<Buffer>;
  page(q: { target?: string; pid?: number }): Promise<string>;
  health(): { ok: boolean; text: string };
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

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`${path}: cannot read the TLS ${what} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AgentServer {
  private server!: Server;
  private readonly tokenHash: Buffer | undefined;

  constructor(private readonly cfg: AgentConfig, private readonly routes: Routes) {
    this.tokenHash = cfg.token ? digest(cfg.token) : undefined;
  }

  /** Listens; resolves with the port (the one asked for, or the kernel's pick for 0). */
  async listen(): Promise<number> {
    checkExposure(this.cfg);
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    if (this.cfg.tls) {
      const cert = readPem(this.cfg.tls.cert, 'certificate');
      const key = readPem(this.cfg.tls.key, 'key');
      try {
        this.server = createHttps({ cert, key }, handler);
      } catch (err) {
        throw new UserError(`TLS: cannot use ${this.cfg.tls.cert} and ${this.cfg.tls.key}: ${(err as Error).message}`);
      }
    } else this.server = createHttp(handler);
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    const { host, port } = this.cfg.listen;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new UserError(`cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.code === 'EACCES' ? 'permission denied' : err.message}`));
      });
      this.server.listen(port, host, () => resolve());
    });
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : port;
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.tokenHash) return true;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    // compared as digests: same length, constant time
    return !!m && timingSafeEqual(digest(m[1]!), this.tokenHash);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    const send = (code: number, type: string, body: string | Buffer): void => {
      res.statusCode = code;
      res.setHeader('Content-Type', type);
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
      }
      const url = new URL(req.url ?? '/', 'http://agent');
      if (url.pathname === '/healthz') {
        const h = this.routes.health();
        return send(h.ok ? 200 : 503, 'text/plain; charset=utf-8', h.text);
      }
      if (!this.authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="leakscope"');
        return send(401, 'text/plain; charset=utf-8', 'a bearer token is required\n');
      }
      const q = this.query(url);
      if (typeof q === 'string') return send(400, 'text/plain; charset=utf-8', `${q}\n`);
      switch (url.pathname) {
        case '/metrics': {
          const m = await this.routes.metrics(req.headers.accept);
          return send(200, m.type, m.body);
        }
        case '/debug/pprof/heap': {
          const body = await this.routes.heap(q);
          res.setHeader('Content-Disposition', 'attachment; filename="heap.pb.gz"');
          return send(200, 'application/octet-stream', body);
        }
        case '/debug/pprof':
        case '/debug/pprof/':
          return send(200, 'text/plain; charset=utf-8', 'heap: /debug/pprof/heap (?target=NAME, ?pid=PID): outstanding memory by stack (profile.proto)\n');
        case '/':
        case '/index.html':
          return send(200, 'text/html; charset=utf-8', await this.routes.page(q));
        default:
          return send(404, 'text/plain; charset=utf-8', 'not found: /metrics, /debug/pprof/heap, /healthz or /\n');
      }
    } catch (err) {
      if (!res.headersSent) send(500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message.split('\n')[0]}\n`);
      else res.destroy();
    }
  }

  private query(url: URL): { target?: string; pid?: number } | string {
    const out: { target?: string; pid?: number } = {};
    const pid = url.searchParams.get('pid');
    if (pid !== null) {
      if (!/^\d{1,8}$/.test(pid)) return 'pid must be a process id';
      out.pid = Number(pid);
    }
    const target = url.searchParams.get('target');
    if (target !== null) {
      if (!this.routes.targets().includes(target)) return `no such target; targets: ${this.routes.targets().join(', ')}`;
      out.target = target;
    }
    return out;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
