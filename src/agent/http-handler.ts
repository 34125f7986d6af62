// What every request to the agent goes through, wherever it is served (the unprivileged web
// process, web.ts, or the agent itself with `user: root`): only GET and HEAD, the bearer token
// checked in constant time, query parameters checked (a pid is a number, a target one of ours),
// no-store and nosniff on every answer. The answers themselves come from `ask` (the agent).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';

export type Route = 'metrics' | 'heap' | 'page' | 'health';

export interface Query {
  target?: string;
  pid?: number;
}

export interface Answer {
  status: number;
  type: string;
  body: string | Uint8Array;
  headers?: Record<string, string>;
}

export interface HandlerOptions {
  /** sha256 of the bearer token, when one is required. */
  tokenHash?: Buffer;
  targets: string[];
  ask(route: Route, q: Query, accept: string | undefined): Promise<Answer>;
}

export const tokenDigest = (s: string): Buffer => createHash('sha256').update(s).digest();

const TEXT = 'text/plain; charset=utf-8';

function parseQuery(url: URL, targets: string[]): Query | string {
  const out: Query = {};
  const pid = url.searchParams.get('pid');
  if (pid !== null) {
    if (!/^\d{1,8}$/.test(pid)) return 'pid must be a process id';
    out.pid = Number(pid);
  }
  const target = url.searchParams.get('target');
  if (target !== null) {
    if (!targets.includes(target)) return `no such target; targets: ${targets.join(', ')}`;
    out.target = target;
  }
  return out;
}

export function requestHandler(o: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const authorized = (req: IncomingMessage): boolean => {
    if (!o.tokenHash) return true;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    // compared as digests: same length, constant time
    return !!m && timingSafeEqual(tokenDigest(m[1]!), o.tokenHash);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Frame-Options', 'DENY');
    const send = (a: Answer): void => {
      res.statusCode = a.status;
      for (const [k, v] of Object.entries(a.headers ?? {})) res.setHeader(k, v);
      res.setHeader('Content-Type', a.type);
      res.setHeader('Content-Length', Buffer.byteLength(a.body));
      res.end(req.method === 'HEAD' ? undefined : a.body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send({ status: 405, type: TEXT, body: 'only GET and HEAD\n', headers: { Allow: 'GET, HEAD' } });
      const url = new URL(req.url ?? '/', 'http://agent');
      if (url.pathname === '/healthz') return send(await o.ask('health', {}, undefined));
      if (!authorized(req)) return send({ status: 401, type: TEXT, body: 'a bearer token is required\n', headers: { 'WWW-Authenticate': 'Bearer realm="leakscope"' } });
      const q = parseQuery(url, o.targets);
      if (typeof q === 'string') return send({ status: 400, type: TEXT, body: `${q}\n` });
      switch (url.pathname) {
        case '/metrics':
          return send(await o.ask('metrics', q, req.headers.accept));
        case '/debug/pprof/heap':
          return send(await o.ask('heap', q, undefined));
        case '/debug/pprof':
        case '/debug/pprof/':
          return send({ status: 200, type: TEXT, body: 'heap: /debug/pprof/heap (?target=NAME, ?pid=PID): outstanding memory by stack (profile.proto)\n' });
        case '/':
        case '/index.html':
          return send(await o.ask('page', q, undefined));
        default:
          return send({ status: 404, type: TEXT, body: 'not found: /metrics, /debug/pprof/heap, /healthz or /\n' });
      }
    } catch (err) {
      if (!res.headersSent) send({ status: 500, type: TEXT, body: `internal error: ${(err as Error).message.split('\n')[0]}\n` });
      else res.destroy();
    }
  };
  return (req, res) => void handle(req, res);
}
