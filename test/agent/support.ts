// Shared by the agent tests: Debian's nginx and apache2 (private copies of their executables, so
// an --exe target sees only ours) with our leaking modules, the agent run through the CLI,
// Prometheus started on its own port and data directory, and a Prometheus text parser.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { request, Agent as HttpAgent } from 'node:http';
import { join } from 'node:path';
import { root } from '../attach/helpers.js';
import { spawnCli } from '../support/cli.js';
import { startApache, startNginx, stopper, type Server } from '../attach/servers.js';

export interface Proc {
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Debian nginx (a private copy of its executable) with our leaking module on /leak, /churn and
 *  /conn-leak. */
export function startNginxLeak(dir: string, port: number, module: string, workers = 2): Promise<Server> {
  return startNginx(dir, port, workers, {
    modules: [module],
    locations: '    location /leak { leak_keep; }\n    location /churn { leak_churn; }\n    location /conn-leak { leak_conn; }\n',
  });
}

/** Builds test/programs/agent/mod_leaky.c with apxs into dir; returns the .so. */
export function buildApacheModule(dir: string): string {
  copyFileSync(join(root, 'test/programs/agent/mod_leaky.c'), join(dir, 'mod_leaky.c'));
  const r = spawnSync('apxs', ['-c', 'mod_leaky.c'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`apxs: ${r.stderr}`);
  return join(dir, '.libs/mod_leaky.so');
}

/** Debian apache2 (a private copy of its executable) with test/programs/agent/mod_leaky.c on
 *  /leak and /leak-pchild. */
export function startApacheLeak(dir: string, port: number, module: string): Promise<Server> {
  return startApache(dir, port, `LoadModule leaky_module ${module}
# four children from the start, never more nor fewer: keepalive connections each hold one, and
# the tests know which children there are
StartServers 4
MinSpareServers 1
MaxSpareServers 4
MaxRequestWorkers 4
<Location /leak>
  SetHandler leaky
</Location>
<Location /leak-pchild>
  SetHandler leaky-pchild
</Location>
`, { copyExe: true });
}

export interface AgentRun extends Proc {
  stderr(): string;
  exited: Promise<number>;
}

/** Starts `leakscope agent ARGS`; resolves once it serves. */
export async function startAgent(args: string[], opts: { timeoutMs?: number } = {}): Promise<AgentRun> {
  const child = spawnCli(['agent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start: ${err}`)), opts.timeoutMs ?? 30000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('leakscope agent: serving')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`the agent exited (${code}): ${err}`)); });
  });
  // The agent bounds its own stop (its HTTP side 3 s, then the loader 10 s to detach its probes):
  // a third of its uprobe links take 0.1-0.2 s each to close (strace of an attach's loader; eight
  // threads close them now, which halved that phase), so its stop took 3-6 s beside a loaded suite
  // and went past the 8 s once allowed with two suites at once. 30 s is twice the agent's own bound.
  return { child, exited, stderr: () => err, stop: stopper(child, 'SIGTERM', 30_000) };
}

/** A GET on loopback: status and body. */
export function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, timeout: 30_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), headers: res.headers }));
    });
    // a request never answered fails the test instead of hanging it
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, samples only (escapes in label values undone). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    let lm: RegExpExecArray | null;
    let seen = 0;
    while ((lm = re.exec(m[2] ?? '')) !== null) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      seen += lm[0].length;
    }
    if (seen !== (m[2] ?? '').length) throw new Error(`labels not understood: ${line}`);
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(port: number): Promise<Sample[]> {
  const r = await get(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
  return parseMetrics(r.body.toString());
}

/** Polls until `check` returns a value (not undefined), or fails with what it last saw. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Prometheus (Debian's package), scraping the agent every second, rules evaluated every second. */
export async function startPrometheus(dir: string, port: number, agentPort: number, rulesFile: string): Promise<Proc & { query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> }> {
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'prometheus.yml');
  writeFileSync(conf, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${rulesFile}
scrape_configs:
  - job_name: leakscope
    static_configs:
      - targets: ['127.0.0.1:${agentPort}']
`);
  const child = spawn('prometheus', [`--config.file=${conf}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: 'ignore' });
  const stop = stopper(child);
  try {
    await until('prometheus to be ready', 30000, async () => ((await get(port, '/-/ready')).status === 200 ? true : undefined), 300);
  } catch (err) {
    await stop();
    throw err;
  }
  const query = async (expr: string) => {
    const r = await get(port, `/api/v1/query?query=${encodeURIComponent(expr)}`);
    const j = JSON.parse(r.body.toString()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (j.status !== 'success') throw new Error(`query ${expr}: ${j.error}`);
    return j.data.result;
  };
  return { child, stop, query };
}

/** Requests on keepalive connections, `concurrency` at a time, until stop(). */
export function traffic(port: number, path: string, concurrency: number, pauseMs: number): { stop(): Promise<void>; count(): number } {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let n = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => { n++; resolve(); });
    });
    req.on('error', () => resolve());
    req.end();
  });
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      await one();
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    count: () => n,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}
