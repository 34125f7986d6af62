// The probes' budget of `auto` mode with the real components: Debian's nginx (2 workers) with
// the leaking test module, kept busy by keepalive clients, one of whose requests leaks into its
// connection's pool (`leak_conn`). With a budget far below that traffic's probe hits, the agent
// switches nginx to walk mode (one log line, `leakscope_target_mode`), attaches no probe from
// then on, and still finds the connection pools growing, now from walks of ngx_cycle's
// connections, with every pool once. With the default budget the same traffic keeps its probes,
// at no more than half the budget: the 2x margin the other agent tests' traffic (this one's
// kind, at most 2,400 hits/s: see below) has below the default. An explicit `mode: events` keeps
// its probes whatever the budget. A short back-off: the probes are tried again, and stay once the
// traffic has stopped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../attach/helpers.js';
import { freePort } from '../support/ports.js';
import { nginxModule } from '../support/nginx-module.js';
import { DEFAULTS } from '../../src/agent/config.js';
import { scrape, startAgent, startNginxLeak, traffic, until, type AgentRun, type Sample } from './support.js';

const value = (ms: Sample[], name: string, labels: Record<string, string> = {}) =>
  ms.find((s) => s.name === name && s.labels.target === 'nginx' && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** The traffic: each loop waits 5-10 ms between requests, so it makes at most 100-200 requests a
 *  second whatever the machine's speed: /conn-leak 2 x 100 x 2 hits (a request's pool made and
 *  destroyed), /churn 200 x 4, / 200 x 2: at most 1,600 probe hits/s. The agent-prometheus test's
 *  nginx traffic, the heaviest of the agent tests, is bounded the same way at 2,400/s. */
function load(port: number): ReturnType<typeof traffic>[] {
  return [traffic(port, '/conn-leak', 2, 10), traffic(port, '/churn', 1, 5), traffic(port, '/', 1, 5)];
}

interface Run {
  agentPort: number;
  ngxPort: number;
  agent: AgentRun;
  dir: string;
  /** The traffic running (load() once nginx is traced); stopped at the end. */
  loads: ReturnType<typeof traffic>[];
}

/** nginx with the leaking module, the agent watching it (`top`: config lines at the top level,
 *  `target`: the target's), the traffic started once both workers are traced in events mode. */
async function withNginxAndAgent(name: string, config: { top?: string; target?: string }, body: (r: Run) => Promise<void>): Promise<void> {
  const dir = tempDir(name);
  const [ngxPort, agentPort] = [await freePort(), await freePort()];
  const nginx = await startNginxLeak(join(dir, 'ngx'), ngxPort, await nginxModule('ngx_http_leak_module'), 2);
  let run: Run | undefined;
  let agent: AgentRun | undefined;
  try {
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, `listen: 127.0.0.1:${agentPort}
sample: 500ms
window: 20s
segments: { dir: ${join(dir, 'segments')}, every: 1h }
${config.top ?? ''}targets:
  - name: nginx
    exe: ${nginx.exe}
    poolSample: 500ms
${config.target ?? ''}`);
    agent = await startAgent(['--config', file]);
    await until('nginx traced in events mode', 20000, async () => {
      const ms = await scrape(agentPort);
      const workers = ms.filter((s) => s.name === 'leakscope_process_outstanding_bytes' && s.labels.target === 'nginx' && s.labels.role === 'worker');
      return workers.length === 2 && value(ms, 'leakscope_target_mode', { mode: 'events' }) === 1 ? true : undefined;
    });
    run = { agentPort, ngxPort, agent, dir, loads: load(ngxPort) };
    await body(run);
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\n`);
    throw err;
  } finally {
    for (const l of run?.loads ?? []) await l.stop();
    await agent?.stop();
    await nginx.stop();
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
}

test('agent: nginx over a low probe budget is switched to walk mode, and its connection-pool leak is still found', { timeout: 180_000 }, async () => {
  await withNginxAndAgent('agent-governor-low', { target: '    budget: { maxProbeRate: 20, sustain: 6s, backoff: 1h }\n' }, async ({ agentPort, agent, dir }) => {
    const walking = await until('nginx switched to walk mode', 60000, async () => {
      const ms = await scrape(agentPort);
      return value(ms, 'leakscope_target_mode', { mode: 'walk' }) === 1 ? ms : undefined;
    });
    assert.equal(value(walking, 'leakscope_target_mode', { mode: 'events' }), 0);
    assert.equal(value(walking, 'leakscope_target_mode_switches_total'), 1);
    assert.equal(value(walking, 'leakscope_target_probe_budget_hits_per_second'), 20);
    assert.equal(walking.find((s) => s.name === 'leakscope_target_info' && s.labels.target === 'nginx')?.labels.mode, 'walk');
    // one line says why: the rate against the budget
    const why = agent.stderr().split('\n').filter((l) => l.includes('over the budget'));
    assert.equal(why.length, 1, agent.stderr());
    assert.match(why[0]!, /^leakscope agent: target nginx: (\d+) probe hits\/s over the last \d\.\d s, budget 20\/s \(traps ≥ [\d.]+ ms\/s at [\d.]+ µs a hit at best, as measured at start, .*\): over the budget, switching to walk mode .*probes tried again in 3600 s$/);
    assert.ok(Number(/(\d+) probe hits\/s/.exec(why[0]!)![1]) > 20);
    // the trace segment of the probes' session was closed at the switch: the next one starts
    // with what the walk finds (segments rotate hourly here)
    const segments = () => readdirSync(join(dir, 'segments')).filter((f) => /^agent-\S+\.lstrace$/.test(f)).length;
    await until('the segment closed at the switch', 20000, async () => (segments() >= 2 ? true : undefined), 200);
    assert.equal(segments(), 2);

    // no probe any more: the hit count stands still while the traffic goes on and samples are taken
    const hits = value(walking, 'leakscope_probe_hits_total')!;
    const samples = value(await scrape(agentPort), 'leakscope_agent_samples_total') ?? 0;
    const later = await until('six more samples', 30000, async () => {
      const ms = await scrape(agentPort);
      return (ms.find((s) => s.name === 'leakscope_agent_samples_total')?.value ?? 0) >= samples + 6 ? ms : undefined;
    });
    assert.equal(value(later, 'leakscope_probe_hits_total'), hits, 'no probe hit in walk mode');

    // the connection pools, found by walking from ngx_cycle, grow: the leak is seen without probes
    const grown = await until('the connection pools judged growing', 60000, async () => {
      const ms = await scrape(agentPort);
      const v = ms.find((s) => s.name === 'leakscope_pool_class_growth_verdict' && s.labels.target === 'nginx' && s.labels.class === 'connection' && s.value === 1)?.labels.verdict;
      if (v === 'leak' || v === 'growing') return ms;
      throw new Error(`connection class verdict ${v ?? 'none'}`);
    }, 1000);
    assert.ok(value(grown, 'leakscope_pool_class_growth_slope_bytes_per_second', { class: 'connection' })! > 0);
    const conns = value(grown, 'leakscope_pool_class_live_pools', { class: 'connection' })!;
    assert.ok(conns >= 2 && conns <= 4, `${conns} connection pools: the 4 keepalive clients' (2 of them leaking), each once`);
    assert.equal(value(grown, 'leakscope_pool_class_found_pools', { class: 'connection' }), conns, 'found by the walk');
    // every pool once: one cycle pool per process (master and 2 workers), not one per session
    assert.equal(value(grown, 'leakscope_pool_class_live_pools', { class: 'cycle' }), 3);
    assert.equal(value(await scrape(agentPort), 'leakscope_target_mode', { mode: 'walk' }), 1, 'still in walk mode');
  });
});

test('agent: the same traffic under the default budget keeps its probes, at most half the budget', { timeout: 180_000 }, async () => {
  await withNginxAndAgent('agent-governor-default', {}, async ({ agentPort, agent }) => {
    // the governor's rate appears once it has measured a whole interval (30 s by default)
    const ms = await until('the governor\'s first measure', 90000, async () => {
      const m = await scrape(agentPort);
      return (value(m, 'leakscope_target_probe_rate_hits_per_second') ?? 0) > 0 ? m : undefined;
    }, 1000);
    const rate = value(ms, 'leakscope_target_probe_rate_hits_per_second')!;
    assert.equal(value(ms, 'leakscope_target_probe_budget_hits_per_second'), DEFAULTS.maxProbeRate);
    assert.ok(rate > 20, `the traffic makes ${rate} hits/s: above the other test's budget`);
    assert.ok(rate * 2 <= DEFAULTS.maxProbeRate, `the traffic makes ${rate} hits/s: not a 2x margin below the default budget`);
    assert.equal(value(ms, 'leakscope_target_mode', { mode: 'events' }), 1);
    assert.equal(value(ms, 'leakscope_target_mode_switches_total'), 0);
    assert.doesNotMatch(agent.stderr(), /over the budget/);
    // probes on: the connection pools are seen made, with their creation stack
    assert.ok((value(ms, 'leakscope_pool_class_live_pools', { class: 'created at ngx_event_accept' }) ?? 0) >= 2, 'connections made while traced');
  });
});

test('agent: a mode written in the config is never overridden by the budget', { timeout: 180_000 }, async () => {
  await withNginxAndAgent('agent-governor-explicit', { target: '    mode: events\n    budget: { maxProbeRate: 20, sustain: 6s, backoff: 1h }\n' }, async ({ agentPort, agent }) => {
    // the same traffic for twice the interval that tripped the `auto` target above (sample: 500ms)
    const ms0 = await scrape(agentPort);
    const samples = ms0.find((s) => s.name === 'leakscope_agent_samples_total')?.value ?? 0;
    const hits = value(ms0, 'leakscope_probe_hits_total') ?? 0;
    const ms = await until('12 s of traffic at more hits than the budget', 60000, async () => {
      const m = await scrape(agentPort);
      const n = m.find((s) => s.name === 'leakscope_agent_samples_total')?.value ?? 0;
      return n >= samples + 24 && (value(m, 'leakscope_probe_hits_total') ?? 0) > hits + 20 * 12 ? m : undefined;
    });
    assert.equal(value(ms, 'leakscope_target_mode', { mode: 'events' }), 1);
    assert.equal(value(ms, 'leakscope_target_probe_budget_hits_per_second'), undefined, 'no budget for an explicit mode');
    assert.doesNotMatch(agent.stderr(), /over the budget|switching to walk/);
  });
});

test('agent: after the back-off the probes are tried again, and stay once the traffic has fallen under the budget', { timeout: 180_000 }, async () => {
  await withNginxAndAgent('agent-governor-retry', { top: 'budget: { maxProbeRate: 20, sustain: 6s, backoff: 4s }\n' }, async (run) => {
    const { agentPort, agent } = run;
    await until('nginx switched to walk mode', 60000, async () => (value(await scrape(agentPort), 'leakscope_target_mode', { mode: 'walk' }) === 1 ? true : undefined));
    // the traffic stops: the next try finds the rate under budget, and the probes stay
    for (const l of run.loads) await l.stop();
    run.loads = [];
    const back = await until('the probes kept after a try', 60000, async () => {
      const ms = await scrape(agentPort);
      return value(ms, 'leakscope_target_mode', { mode: 'events' }) === 1 && /within the budget, staying with the probes/.test(agent.stderr()) ? ms : undefined;
    });
    // walk -> events: the tries that found the traffic still high (if any) went back to walk
    const switches = value(back, 'leakscope_target_mode_switches_total')!;
    assert.ok(switches >= 2 && switches % 2 === 0, `${switches} switches`);
    assert.match(agent.stderr(), /target nginx: trying the probes again for 6 s \(walk mode for \d+ s\)/);
    // the probes work again (a request is seen made), and the pools found anew are there once
    const hits = value(back, 'leakscope_probe_hits_total')!;
    run.loads = [traffic(run.ngxPort, '/', 1, 50)];
    await until('probe hits again', 20000, async () => ((value(await scrape(agentPort), 'leakscope_probe_hits_total') ?? 0) > hits ? true : undefined));
    const ms = await until('a sample after the switch', 20000, async () => {
      const m = await scrape(agentPort);
      return value(m, 'leakscope_pool_class_live_pools', { class: 'cycle' }) !== undefined ? m : undefined;
    });
    assert.equal(value(ms, 'leakscope_pool_class_live_pools', { class: 'cycle' }), 3, 'one cycle pool per process after two switches');
  });
});
