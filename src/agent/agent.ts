// `leakscope agent`: watches its targets for as long as it runs, samples them, and serves the
// numbers (metrics.ts), the heap profile and the live report (views.ts) over HTTP (server.ts).

import { pprofBytes } from '../reports/export/pprof.js';
import { htmlReport } from '../reports/html/report.js';
import type { AgentConfig } from './config.js';
import type { Log } from './log.js';
import { agentRegistry, Exposer, type AgentView } from './metrics.js';
import { AgentServer } from './server.js';
import type { Answer, Query, Route } from './http-handler.js';
import { resultOf, windowOf } from './views.js';
import { TargetWatch } from './watch.js';
import { Segments } from './segments.js';

/** Targets are looked for (new processes, vanished ones) this often. */
const CHECK_MS = 2000;

export class Agent implements AgentView {
  readonly watches: TargetWatch[];
  readonly startMono = process.hrtime.bigint();
  readonly startWallMs = Date.now();
  port = 0;
  samples = 0;
  lastSampleSeconds = 0;
  private readonly server: AgentServer;
  private timers: NodeJS.Timeout[] = [];
  private sampling = false;
  private segments: Segments | undefined;

  constructor(readonly cfg: AgentConfig, private readonly log: Log) {
    this.watches = cfg.targets.map((t) => new TargetWatch(t, cfg, this.startMono, log));
    const exposer = new Exposer(agentRegistry(this));
    this.server = new AgentServer(cfg, {
      answer: (route, q, accept) => this.answer(route, q, accept, exposer),
      targets: () => this.watches.map((w) => w.name),
    }, log);
  }

  private async answer(route: Route, q: Query, accept: string | undefined, exposer: Exposer): Promise<Answer> {
    switch (route) {
      case 'metrics': {
        const m = await exposer.render(accept);
        return { status: 200, type: m.type, body: m.body };
      }
      case 'heap': {
        const body = pprofBytes(windowOf(this.watches, q, this.nowNs()), {
          meta: { format: 1, clock: 'ns', source: 'agent', startWallMs: this.startWallMs },
          inputs: [`leakscope agent${q.target ? ` target ${q.target}` : ''}${q.pid !== undefined ? ` pid ${q.pid}` : ''}`],
        });
        return { status: 200, type: 'application/octet-stream', body, headers: { 'Content-Disposition': 'attachment; filename="heap.pb.gz"' } };
      }
      case 'page': {
        const html = await htmlReport(resultOf(this.watches, q, { startWallMs: this.startWallMs, top: 100 }), windowOf(this.watches, q, this.nowNs()));
        return { status: 200, type: 'text/html; charset=utf-8', body: html };
      }
      case 'health': {
        const h = this.health();
        return { status: h.ok ? 200 : 503, type: 'text/plain; charset=utf-8', body: h.text };
      }
    }
  }

  /** The uid the HTTP side runs as (undefined when the agent serves itself). */
  get webUid(): number | undefined {
    return this.server.webUid;
  }

  seriesHeld(): number {
    return this.watches.reduce((s, w) => s + w.sampler.seriesCount, 0);
  }

  private nowNs(): number {
    return Number(process.hrtime.bigint() - this.startMono);
  }

  private health(): { ok: boolean; text: string } {
    const lines = this.watches.map((w) => `${w.name}: ${w.up ? `${w.numbers.processes.length} process(es), ${w.mode} mode` : w.problem ? `not traced: ${w.problem}` : 'no process'}`);
    return { ok: true, text: `ok\n${lines.join('\n')}\n` };
  }

  /** Listens, then starts watching and sampling. */
  async start(): Promise<void> {
    this.port = await this.server.listen();
    if (this.cfg.segments) {
      this.segments = new Segments(this.cfg.segments, this.startMono, this.startWallMs, this.log);
      for (const w of this.watches) {
        w.tap = this.segments.sinkFor(w);
        w.onModeSwitch = () => this.segments?.rotate();
      }
      this.segments.start(this.watches);
    }
    await Promise.all(this.watches.map((w) => w.check()));
    this.timers.push(setInterval(() => { for (const w of this.watches) void w.check(); }, CHECK_MS));
    this.timers.push(setInterval(() => void this.sample(), this.cfg.sampleMs));
    await this.sample();
  }

  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    const t0 = process.hrtime.bigint();
    try {
      for (const w of this.watches) {
        try {
          await w.sample();
        } catch (err) {
          this.log.warn(`target ${w.name}: sample failed: ${(err as Error).message}`);
        }
      }
      this.samples++;
    } finally {
      this.lastSampleSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.sampling = false;
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.server.close();
    await Promise.all(this.watches.map((w) => w.stop()));
    await this.segments?.stop();
  }
}
