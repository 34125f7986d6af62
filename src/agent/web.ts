// The agent's HTTP side as a process of its own, run as an unprivileged user (`user:`, nobody by
// default): the code that parses requests from the network holds no capability, cannot read the
// traced processes' memory and cannot load BPF programs. It gets the listening socket and the
// TLS key from the agent, checks each request (http-handler.ts) and asks the agent for the
// answer over the IPC channel. It ends when the agent does.

import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { requestHandler, type Answer, type Query, type Route } from './http-handler.js';

export interface WebInit {
  type: 'init';
  tokenHash?: string;
  tls?: { cert: string; key: string };
  targets: string[];
}

type FromAgent = WebInit | { type: 'answer'; id: number; answer: Answer };

const pending = new Map<number, (a: Answer) => void>();
let nextId = 1;
let server: Server | undefined;

/** A request the agent has not answered in this long gets a 503 (a scraper must not hang). */
const ASK_TIMEOUT_MS = 20_000;

function ask(route: Route, q: Query, accept: string | undefined): Promise<Answer> {
  return new Promise((resolve) => {
    const id = nextId++;
    const timer = setTimeout(() => {
      pending.delete(id);
      resolve({ status: 503, type: 'text/plain; charset=utf-8', body: `the agent did not answer within ${ASK_TIMEOUT_MS / 1000} s\n` });
    }, ASK_TIMEOUT_MS);
    pending.set(id, (a) => {
      clearTimeout(timer);
      resolve(a);
    });
    process.send!({ type: 'ask', id, route, q, accept });
  });
}

process.on('message', (m: FromAgent, handle?: unknown) => {
  if (m.type === 'answer') {
    pending.get(m.id)?.(m.answer);
    pending.delete(m.id);
  } else if (m.type === 'init' && !server) {
    const handler = requestHandler({ tokenHash: m.tokenHash ? Buffer.from(m.tokenHash, 'hex') : undefined, targets: m.targets, ask });
    server = m.tls ? createHttps({ cert: m.tls.cert, key: m.tls.key }, handler) : createHttp(handler);
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.on('error', (err) => {
      process.send!({ type: 'error', message: err.message });
      process.exit(1);
    });
    server.listen(handle as Server, () => process.send!({ type: 'ready', uid: process.getuid?.() }));
  }
});
// the agent is gone: so is its HTTP side
process.on('disconnect', () => process.exit(0));
