// /metrics: the agent's numbers in the Prometheus text format (OpenMetrics when asked), through
// prom-client. Names follow Prometheus' conventions (base units in the name, `_total` for
// counters); a growth verdict is a state set: one series per state, 1 for the current one.
// Label values that come from traced processes (exe, names of sites and pool classes) are made
// one line and cut to a bounded length here; prom-client escapes them in the exposition.

import { Counter, Gauge, Registry, collectDefaultMetrics, openMetricsContentType, type Metric, type RegistryContentType } from 'prom-client';
import type { Verdict } from '../analyses/result.js';
import type { TargetWatch } from './watch.js';

export const VERDICTS = ['leak', 'growing', 'bounded', 'steady'] as const;
/** A target's modes (watch.ts), as a state set: `waiting` before its first process. */
export const MODES = ['events', 'aggregate', 'walk', 'luajit', 'waiting'] as const;
const MAX_LABEL = 200;

/** A label value from a traced process: printable, one line, bounded. */
export function labelValue(s: string): string {
  const one = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  return one.length > MAX_LABEL ? `${one.slice(0, MAX_LABEL - 1)}…` : one;
}

export interface AgentView {
  watches: TargetWatch[];
  samples: number;
  lastSampleSeconds: number;
  seriesHeld(): number;
}

function setVerdict(g: Gauge, labels: Record<string, string>, v: Verdict | undefined): void {
  for (const s of VERDICTS) g.set({ ...labels, verdict: s }, v?.verdict === s ? 1 : 0);
}

export function agentRegistry(view: AgentView): Registry<RegistryContentType> {
  const reg = new Registry<RegistryContentType>();
  collectDefaultMetrics({ register: reg, prefix: 'leakscope_agent_' });
  const metrics: Metric[] = [];
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void): void => {
    metrics.push(new Gauge({ name, help, labelNames, registers: [reg], collect() { this.reset(); collect(this); } }));
  };
  const counter = (name: string, help: string, labelNames: string[], collect: (c: Counter) => void): void => {
    // a counter whose total is kept elsewhere: set from it at each scrape
    metrics.push(new Counter({ name, help, labelNames, registers: [reg], collect() { this.reset(); collect(this); } }));
  };
  const T = ['target'];
  const P = ['target', 'pid', 'exe', 'role'];
  const procLabels = (w: TargetWatch, p: { pid: number; exe: string; role: string }) => ({ target: w.name, pid: String(p.pid), exe: labelValue(p.exe), role: p.role });

  gauge('leakscope_target_up', 'Whether the target has processes being traced (1) or none (0)', T, (g) => {
    for (const w of view.watches) g.set({ target: w.name }, w.up ? 1 : 0);
  });
  gauge('leakscope_target_processes', 'Processes of the target being traced', T, (g) => {
    for (const w of view.watches) g.set({ target: w.name }, w.numbers.processes.length);
  });
  gauge('leakscope_target_info', 'How the target is traced (always 1)', ['target', 'mode', 'allocator'], (g) => {
    for (const w of view.watches) g.set({ target: w.name, mode: w.mode ?? 'waiting', allocator: w.profiles.map((p) => p.name).join(',') }, 1);
  });
  gauge('leakscope_target_mode', 'How the target is traced now (1 for the current mode): in auto mode, walk when the probes went over their budget', ['target', 'mode'], (g) => {
    for (const w of view.watches) for (const m of MODES) g.set({ target: w.name, mode: m }, (w.mode ?? 'waiting') === m ? 1 : 0);
  });
  counter('leakscope_target_mode_switches_total', 'Times the probes\' budget switched the target between events and walk mode (either way)', T, (c) => {
    for (const w of view.watches) if (w.governor) c.inc({ target: w.name }, w.governor.switches);
  });
  gauge('leakscope_target_probe_budget_hits_per_second', 'The probes\' budget in auto mode: probe hits per second across the target\'s processes, held for the budget\'s interval, that switch it to walk mode', T, (g) => {
    for (const w of view.watches) if (w.governor) g.set({ target: w.name }, w.governor.cfg.maxProbeRate);
  });
  gauge('leakscope_target_probe_rate_hits_per_second', 'Probe hits per second across the target\'s processes over the budget\'s last interval, as the governor measured it (auto mode, probes on)', T, (g) => {
    for (const w of view.watches) if (w.governor && w.mode === 'events') g.set({ target: w.name }, w.governor.rate);
  });
  counter('leakscope_target_vanished_total', 'Times every process of the target was gone', T, (c) => {
    for (const w of view.watches) c.inc({ target: w.name }, w.vanished);
  });
  counter('leakscope_target_reattach_total', 'Times the target was attached afresh (exec, binary upgrade, a process left untraced)', T, (c) => {
    for (const w of view.watches) c.inc({ target: w.name }, w.restarts);
  });
  counter('leakscope_process_exits_total', 'Traced processes of the target that exited', T, (c) => {
    for (const w of view.watches) c.inc({ target: w.name }, w.model.exits);
  });
  counter('leakscope_events_lost_total', 'Probe events lost (ring buffer or kernel map full): the numbers undercount', T, (c) => {
    for (const w of view.watches) c.inc({ target: w.name }, w.lost);
  });
  counter('leakscope_probe_hits_total', 'Probe hits reported for the target (each costs the traced process about a microsecond)', T, (c) => {
    for (const w of view.watches) c.inc({ target: w.name }, w.probeHits);
  });
  counter('leakscope_limit_dropped_total', 'Pools, blocks or stacks not kept individually because a limit was reached', ['target', 'what'], (c) => {
    for (const w of view.watches) {
      c.inc({ target: w.name, what: 'pools_or_blocks' }, w.model.overCap);
      c.inc({ target: w.name, what: 'stacks' }, w.stacks.dropped);
    }
  });

  gauge('leakscope_process_outstanding_bytes', 'Bytes the process holds in live pools and heap blocks', P, (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) g.set(procLabels(w, p), p.bytes);
  });
  gauge('leakscope_process_outstanding_blocks', 'Live heap blocks plus live pools of the process', P, (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) g.set(procLabels(w, p), p.blocks);
  });
  gauge('leakscope_process_live_pools', 'Live pools of the process', P, (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) g.set(procLabels(w, p), p.pools);
  });
  gauge('leakscope_process_resident_memory_bytes', 'Resident set size of the process', P, (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) if (p.rssBytes !== undefined) g.set(procLabels(w, p), p.rssBytes);
  });
  gauge('leakscope_process_growth_verdict', 'Growth verdict of the process\'s outstanding bytes over the window (1 for the current state)', [...P, 'verdict'], (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) setVerdict(g, procLabels(w, p), p.verdict);
  });
  gauge('leakscope_process_growth_slope_bytes_per_second', 'Theil-Sen slope of the process\'s outstanding bytes over the window', P, (g) => {
    for (const w of view.watches) for (const p of w.numbers.processes) if (p.verdict) g.set(procLabels(w, p), p.verdict.slope);
  });

  const C = ['target', 'class', 'kind'];
  const S = ['target', 'site', 'kind'];
  gauge('leakscope_pool_class_outstanding_bytes', 'Bytes in live pools of the class, summed over the target\'s processes (top K classes, the rest as class="other")', C, (g) => {
    for (const w of view.watches) for (const c of w.numbers.classes) g.set({ target: w.name, class: labelValue(c.name), kind: c.kind }, c.bytes);
  });
  gauge('leakscope_pool_class_live_pools', 'Live pools of the class', C, (g) => {
    for (const w of view.watches) for (const c of w.numbers.classes) g.set({ target: w.name, class: labelValue(c.name), kind: c.kind }, c.count);
  });
  gauge('leakscope_pool_class_found_pools', 'Live pools of the class that were alive before the trace began (found in the process\'s memory: their creation was not seen)', C, (g) => {
    for (const w of view.watches) for (const c of w.numbers.classes) g.set({ target: w.name, class: labelValue(c.name), kind: c.kind }, c.found);
  });
  gauge('leakscope_pool_class_growth_verdict', 'Growth verdict of the class\'s bytes over the window (1 for the current state)', [...C, 'verdict'], (g) => {
    for (const w of view.watches) for (const c of w.numbers.classes) setVerdict(g, { target: w.name, class: labelValue(c.name), kind: c.kind }, c.verdict);
  });
  gauge('leakscope_pool_class_growth_slope_bytes_per_second', 'Theil-Sen slope of the class\'s bytes over the window', C, (g) => {
    for (const w of view.watches) for (const c of w.numbers.classes) if (c.verdict) g.set({ target: w.name, class: labelValue(c.name), kind: c.kind }, c.verdict.slope);
  });
  gauge('leakscope_site_outstanding_bytes', 'Bytes outstanding from the site (pool creation or heap allocation), summed over the target\'s processes (top K sites, the rest as site="other")', S, (g) => {
    for (const w of view.watches) for (const s of w.numbers.sites) g.set({ target: w.name, site: labelValue(s.name), kind: s.kind }, s.bytes);
  });
  gauge('leakscope_site_outstanding_blocks', 'Live blocks (or pools) from the site', S, (g) => {
    for (const w of view.watches) for (const s of w.numbers.sites) g.set({ target: w.name, site: labelValue(s.name), kind: s.kind }, s.count);
  });
  gauge('leakscope_site_growth_verdict', 'Growth verdict of the site\'s outstanding bytes over the window (1 for the current state)', [...S, 'verdict'], (g) => {
    for (const w of view.watches) for (const s of w.numbers.sites) setVerdict(g, { target: w.name, site: labelValue(s.name), kind: s.kind }, s.verdict);
  });
  gauge('leakscope_site_growth_slope_bytes_per_second', 'Theil-Sen slope of the site\'s outstanding bytes over the window', S, (g) => {
    for (const w of view.watches) for (const s of w.numbers.sites) if (s.verdict) g.set({ target: w.name, site: labelValue(s.name), kind: s.kind }, s.verdict.slope);
  });

  counter('leakscope_agent_samples_total', 'Samples the agent took', [], (c) => c.inc(view.samples));
  gauge('leakscope_agent_sample_duration_seconds', 'How long the last sample of every target took', [], (g) => g.set(view.lastSampleSeconds));
  gauge('leakscope_agent_series', 'Rolling series the agent holds (bounded by limits.trackedSeries per table)', [], (g) => g.set(view.seriesHeld()));
  return reg;
}

/** Writes the exposition for an Accept header: OpenMetrics when the scraper asks for it.
 *  Scrapes take turns, since the content type is the registry's, set for one scrape. */
export class Exposer {
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly reg: Registry<RegistryContentType>) {}

  render(accept: string | undefined): Promise<{ type: string; body: string }> {
    const reg = this.reg;
    const open = accept !== undefined && accept.includes('application/openmetrics-text');
    const run = this.turn.then(async () => {
      if (!open) return { type: reg.contentType as string, body: await reg.metrics() };
      reg.setContentType(openMetricsContentType);
      try {
        return { type: openMetricsContentType as string, body: await reg.metrics() };
      } finally {
        reg.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
      }
    });
    this.turn = run.catch(() => undefined);
    return run;
  }
}
