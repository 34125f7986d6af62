// `leakscope agent` end to end with the real components: Debian's nginx and apache2 with our
// leaking modules, the agent watching both, Debian's Prometheus scraping it with the shipped
// alert rules (a short `for:`), and `go tool pprof` reading its heap profile. Apache's children
// leak into their pchild from before the agent starts: the agent finds those pools alive and
// judges them like the pools it sees made. A worker killed and respawned and both masters
// reloaded (HUP) are followed; a server that stops is a metric and a log line. (A binary
// upgrade: agent-upgrade.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, tempDir } from '../attach/helpers.js';
import { HeldConnections } from '../attach/servers.js';
import { freePort } from '../support/ports.js';
import { nginxModule } from '../support/nginx-module.js';
import { buildApacheModule, get, scrape, startAgent, startApacheLeak, startNginxLeak, startPrometheus, traffic, until, type AgentRun, type Sample } from './support.js';


/** The children of a process now (apache's preforked children). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
}

const pidsOf = (ms: Sample[], target: string, role: string): number[] =>
  ms.filter((s) => s.name === 'leakscope_process_outstanding_bytes' && s.labels.target === target && s.labels.role === role).map((s) => Number(s.labels.pid)).sort((a, b) => a - b);

test('agent: nginx and apache2 leaks found through Prometheus (verdict, slope, alert) and pprof; workers and reloads followed', { timeout: 240_000 }, async () => {
  const dir = tempDir('agent-e2e');
  const [ngxPort, apPort, agentPort, promPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const ngxMod = await nginxModule('ngx_http_leak_module');
  const apMod = buildApacheModule(dir);
  const servers: { stop(): Promise<void> }[] = [];
  const loads: ReturnType<typeof traffic>[] = [];
  let held: HeldConnections | undefined;
  let agent: AgentRun | undefined;
  let promStarted: ReturnType<typeof startPrometheus> | undefined;
  try {
    const nginx = await startNginxLeak(join(dir, 'ngx'), ngxPort, ngxMod, 2);
    servers.push(nginx);
    const apache = await startApacheLeak(join(dir, 'ap'), apPort, apMod);
    servers.push(apache);
    // apache's children grow their pchild before the agent is there (and go on)
    const preTraffic = traffic(apPort, '/leak-pchild', 2, 20);
    loads.push(preTraffic);
    await until('requests into pchild before the agent', 10000, async () => (preTraffic.count() >= 20 ? true : undefined), 100);
    const apacheChildren = await until('apache\'s four children', 10000, async () => {
      const c = childrenOf(apache.master.pid!);
      return c.length === 4 ? c : undefined;
    }, 100);
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `# the agent under test: fast samples, a short window
listen: 127.0.0.1:${agentPort}
sample: 500ms
window: 40s
topSites: 5
topClasses: 8
targets:
  - name: nginx
    exe: ${nginx.exe}
    poolSample: 500ms
  - name: apache
    exe: ${apache.exe}
    allocator: apr
    poolSample: 500ms
`);
    // the shipped rules, with a short `for:` so that they fire within the test
    const rules = join(dir, 'rules.yml');
    writeFileSync(rules, readFileSync(join(root, 'deploy/prometheus/leakscope-alerts.yml'), 'utf8').replace(/for: \S+/g, 'for: 3s'));
    // Prometheus starts beside the agent (it scrapes it once it serves)
    promStarted = startPrometheus(join(dir, 'prom'), promPort, agentPort, rules);
    agent = await startAgent(['--config', config]);
    const prom = await promStarted;

    // both targets traced: nginx master + 2 workers, apache master + 4 children
    const first = await until('both targets traced', 20000, async () => {
      const ms = await scrape(agentPort);
      return pidsOf(ms, 'nginx', 'worker').length === 2 && pidsOf(ms, 'apache', 'worker').length === 4 && pidsOf(ms, 'nginx', 'master').length === 1 ? ms : undefined;
    });
    assert.deepEqual(pidsOf(first, 'nginx', 'master'), [nginx.master.pid]);
    assert.deepEqual(pidsOf(first, 'apache', 'master'), [apache.master.pid]);
    assert.deepEqual(pidsOf(first, 'apache', 'worker'), apacheChildren, 'the children running before the agent are traced');

    // a worker killed: the master forks a new one, which is traced
    const [killed, kept] = pidsOf(first, 'nginx', 'worker') as [number, number];
    process.kill(killed, 'SIGKILL');
    const respawned = await until('the respawned nginx worker', 15000, async () => {
      const w = pidsOf(await scrape(agentPort), 'nginx', 'worker');
      return w.length === 2 && w.includes(kept) && !w.includes(killed) ? w : undefined;
    });
    // nginx's master reloaded: every worker is new, and traced (apache's: below, once its
    // children that predate the agent have shown their leak)
    process.kill(nginx.master.pid!, 'SIGHUP');
    await until('new nginx workers after HUP', 20000, async () => {
      const w = pidsOf(await scrape(agentPort), 'nginx', 'worker');
      return w.length === 2 && !w.some((p) => respawned.includes(p)) ? true : undefined;
    });

    // traffic: the leaking handlers, a handler that makes and destroys a pool, plain requests,
    // and held keepalive connections (live connection pools that do not grow)
    held = await HeldConnections.open(ngxPort, 4);
    held.every(300);
    loads.push(traffic(ngxPort, '/leak', 2, 5), traffic(ngxPort, '/churn', 1, 5), traffic(ngxPort, '/', 1, 5), traffic(apPort, '/leak', 2, 5));

    const leakClass = 'created at ngx_http_leak_keep_handler';
    const leaks = ['apache/leaky', 'apache/pchild', `nginx/${leakClass}`];
    await until('the leaking pool classes alerting in Prometheus', 60000, async () => {
      const alerts = await prom.query('ALERTS{alertname="LeakscopePoolClassLeak", alertstate="firing"}');
      const classes = alerts.map((a) => `${a.metric.target}/${a.metric.class}`);
      if (leaks.every((l) => classes.includes(l))) return true;
      const now = await prom.query('leakscope_pool_class_growth_verdict == 1');
      // the agent's log shows a sample that failed (it does not yet say when a module's file could not be read)
      throw new Error(`firing: [${classes.join(', ')}]; verdicts: ${now.map((r) => `${r.metric.target}/${r.metric.class}=${r.metric.verdict}`).join(', ')}; requests: ${loads.map((l) => l.count()).join(' ')}; the agent's log ends: ${agent!.stderr().slice(-1500)}`);
    }, 1000);

    // what Prometheus holds: the leaks with a positive slope, and nothing else as a leak
    const leaking = (await prom.query('leakscope_pool_class_growth_verdict{verdict="leak"} == 1')).map((r) => `${r.metric.target}/${r.metric.class}`).sort();
    assert.deepEqual(leaking, leaks);
    for (const [target, cls] of [['nginx', leakClass], ['apache', 'leaky'], ['apache', 'pchild']] as const) {
      const slope = await prom.query(`leakscope_pool_class_growth_slope_bytes_per_second{target="${target}", class="${cls}"}`);
      assert.equal(slope.length, 1);
      assert.ok(Number(slope[0]!.value[1]) > 0, `${target} ${cls} slope ${slope[0]!.value[1]}`);
    }
    const conn = await prom.query('leakscope_pool_class_growth_verdict{target="nginx", class="created at ngx_event_accept"} == 1');
    assert.equal(conn.length, 1, 'the connection pools are watched');
    assert.notEqual(conn[0]!.metric.verdict, 'leak');
    const site = await prom.query('leakscope_site_growth_verdict{target="nginx", site="ngx_http_leak_keep_handler", verdict="leak"} == 1');
    assert.equal(site.length, 1, 'the leaking site');
    assert.deepEqual(await prom.query('leakscope_process_growth_verdict{role="master", verdict="leak"} == 1'), [], 'the masters do not leak');
    const churn = await prom.query('leakscope_pool_class_growth_verdict{class="created at ngx_http_leak_churn_handler", verdict="leak"} == 1');
    assert.deepEqual(churn, [], 'a pool made and destroyed per request is no leak');

    // the leaking pchild pools are the ones found alive: their children are those from before
    // the agent (no new child made them), and the agent counts them as found
    const now = await scrape(agentPort);
    assert.deepEqual(pidsOf(now, 'apache', 'worker'), apacheChildren);
    const pchild = (name: string) => now.find((m) => m.name === name && m.labels.target === 'apache' && m.labels.class === 'pchild')?.value;
    assert.equal(pchild('leakscope_pool_class_found_pools'), apacheChildren.length, 'every child\'s pchild found alive');
    assert.equal(pchild('leakscope_pool_class_live_pools'), apacheChildren.length);
    // the leaky pools were made while traced
    assert.equal(now.find((m) => m.name === 'leakscope_pool_class_found_pools' && m.labels.target === 'apache' && m.labels.class === 'leaky')?.value, 0);

    // pprof: go tool pprof reads the endpoint; the leaking site is first
    const pp = spawnSync('go', ['tool', 'pprof', '-top', `http://127.0.0.1:${agentPort}/debug/pprof/heap?target=nginx`], {
      encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: join(dir, 'pprof'), HOME: dir }, timeout: 60000,
    });
    assert.equal(pp.status, 0, pp.stderr);
    const rows = pp.stdout.split('\n');
    const head = rows.findIndex((l) => /flat\s+flat%\s+sum%\s+cum\s+cum%/.test(l));
    assert.ok(head >= 0, pp.stdout);
    assert.match(rows[head + 1]!, /\sngx_http_leak_keep_handler$/, pp.stdout);

    // the live report
    const page = await get(agentPort, '/?target=nginx');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /Content-Security-Policy/);
    assert.match(page.body.toString(), /ngx_http_leak_keep_handler/);

    // apache's master reloaded (graceful restart): its children are all new, and traced
    process.kill(apache.master.pid!, 'SIGHUP');
    await until('new apache children after HUP', 20000, async () => {
      const a = pidsOf(await scrape(agentPort), 'apache', 'worker');
      return a.length >= 2 && !a.some((p) => apacheChildren.includes(p)) ? true : undefined;
    });

    // a target that stops is a metric and a log line, and the agent goes on
    for (const l of loads.splice(0)) await l.stop();
    await apache.stop();
    await until('apache down in the metrics', 15000, async () => {
      const up = (await scrape(agentPort)).find((s) => s.name === 'leakscope_target_up' && s.labels.target === 'apache');
      return up?.value === 0 ? true : undefined;
    });
    await until('the log line of apache gone', 10000, async () => (/target apache: no process left/.test(agent!.stderr()) ? true : undefined));
    assert.equal((await get(agentPort, '/healthz')).status, 200);
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\n`);
    throw err;
  } finally {
    held?.close();
    for (const l of loads) await l.stop();
    await agent?.stop();
    await (await promStarted?.catch(() => undefined))?.stop();
    for (const srv of servers) await srv.stop();
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
  assert.doesNotMatch(agent!.stderr(), /internal error|TypeError|at .*\.ts:\d+/);
});
