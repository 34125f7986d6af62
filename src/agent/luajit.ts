// LuaJIT targets (allocator luajit, when asked): the GC heap's tracer reports every allocation,
// so it runs in windows — `luajit.for` out of every `luajit.every` — into a trace that goes
// through the same analysis as `attach --allocator luajit`. The last window's processes and
// sites (with their verdicts) are what the agent serves for the target until the next one.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLuajit } from '../luajit/attach-luajit.js';
import { analyzeWithWindow } from '../pipeline/window-run.js';
import type { AnalysisResult } from '../analyses/result.js';
import type { WindowState } from '../analyses/window.js';
import type { TargetConfig } from './config.js';
import type { Log } from './log.js';
import type { EntitySnap, Sampler, TargetNumbers } from './sampler.js';

export class LuajitWindows {
  pids: number[] = [];
  events = 0;
  lost = 0;
  result: AnalysisResult | undefined;
  window: WindowState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly cfg: TargetConfig, private readonly log: Log) {}

  start(): void {
    this.running = this.run();
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.run();
    }, this.cfg.luajitEveryMs);
  }

  private async run(): Promise<void> {
    const pids = this.pids.slice();
    if (pids.length === 0) {
      this.running = undefined;
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'leakscope-agent-luajit-'));
    try {
      const out = join(dir, 'window.lstrace');
      const r = await attachLuajit({ pids, durationMs: this.cfg.luajitForMs, out, signal: this.abort.signal });
      this.events += r.events;
      this.lost += r.lost;
      for (const w of r.warnings) this.log.warn(`target ${this.cfg.name}: ${w}`);
      if (this.abort.signal.aborted) return;
      const run = await analyzeWithWindow([out], { top: 50 });
      this.result = run.result;
      this.window = run.window;
    } catch (err) {
      this.log.warn(`target ${this.cfg.name}: LuaJIT window: ${(err as Error).message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      this.running = undefined;
    }
  }

  /** The last window's numbers (processes and sites; LuaJIT has no pools). */
  numbers(sampler: Sampler): TargetNumbers {
    const r = this.result;
    if (!r) return { processes: [], classes: [], sites: [] };
    const sites = new Map<string, EntitySnap>();
    for (const p of r.processes) {
      for (const s of p.sites) {
        const e = sites.get(s.label);
        if (e) {
          e.bytes += s.bytes;
          e.count += s.count;
          if (s.verdict?.verdict === 'leak') e.verdict = s.verdict;
        } else sites.set(s.label, { name: s.label, kind: 'luajit', bytes: s.bytes, count: s.count, found: 0, verdict: s.verdict });
      }
    }
    const top = [...sites.values()].sort((a, b) => b.bytes - a.bytes);
    return {
      processes: r.processes.filter((p) => !p.exited).map((p) => ({
        pid: p.pid, ppid: p.ppid, exe: p.exe, command: p.command, role: r.processes.some((q) => q.pid === p.ppid) ? 'worker' : 'master',
        bytes: p.outstanding.heapBytes, blocks: p.outstanding.heapCount, pools: 0, poolBytes: 0, heapBytes: p.outstanding.heapBytes,
        rssBytes: p.rssBytes, verdict: p.verdict,
      })),
      classes: [],
      sites: top.slice(0, sampler.topSites),
    };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.abort.abort();
    await this.running;
  }
}
