// Real Apache (prefork, keepalive) under the agent: each open keepalive connection holds one
// request pool ("request": made when httpd starts reading the connection's next request), so as
// clients connect one by one the class's bytes climb in steps while every pool is destroyed at
// the end of its request. The agent must never call that class a leak (agent-renewal.test.ts has
// the same pattern at the engine level; CI saw it as a flaky "leak" under load).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../attach/helpers.js';
import { freePort } from '../support/ports.js';
import { buildApacheModule, scrape, startAgent, startApacheLeak, traffic, until, type AgentRun, type Sample } from './support.js';

const requestClass = (ms: Sample[], name: string) =>
  ms.filter((s) => s.name === name && s.labels.target === 'apache' && s.labels.class === 'request');

test('agent: Apache\'s request pools, one per keepalive connection, climb as clients connect one by one: never a leak', { timeout: 180_000 }, async () => {
  const dir = tempDir('agent-request');
  const [apPort, agentPort] = [await freePort(), await freePort()];
  const apache = await startApacheLeak(join(dir, 'ap'), apPort, buildApacheModule(dir));
  const loads: ReturnType<typeof traffic>[] = [];
  let agent: AgentRun | undefined;
  try {
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `listen: 127.0.0.1:${agentPort}
sample: 500ms
window: 40s
targets:
  - name: apache
    exe: ${apache.exe}
    allocator: apr
    poolSample: 500ms
`);
    agent = await startAgent(['--config', config]);
    await until('apache\'s four children traced', 20000, async () => {
      const ms = await scrape(agentPort);
      return ms.filter((s) => s.name === 'leakscope_process_outstanding_bytes' && s.labels.target === 'apache' && s.labels.role === 'worker').length === 4 ? true : undefined;
    });
    // one keepalive client, then another every 3 s (each one busy: a request every 12 ms; at 7
    // probe hits a request, four of them make at most 4 x 83 x 7 = 2,300 hits/s, half the
    // agent's default probe budget: the target stays in events mode, whatever the machine)
    const verdicts: string[] = [];
    let most = 0;
    const watch = async () => {
      const ms = await scrape(agentPort);
      const v = requestClass(ms, 'leakscope_pool_class_growth_verdict').find((s) => s.value === 1)?.labels.verdict;
      if (v) verdicts.push(v);
      most = Math.max(most, requestClass(ms, 'leakscope_pool_class_live_pools')[0]?.value ?? 0);
    };
    for (let k = 0; k < 4; k++) {
      loads.push(traffic(apPort, '/', 1, 12));
      const until3s = Date.now() + 3000;
      while (Date.now() < until3s) {
        await watch();
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    // and then the four of them for a while
    const end = Date.now() + 12000;
    while (Date.now() < end) {
      await watch();
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(most >= 3, `the request pools of several connections were live at once (at most ${most})`);
    assert.ok(verdicts.length >= 20, `the class was judged (${verdicts.length} verdicts)`);
    assert.ok(!verdicts.includes('leak'), `request pools judged a leak: ${verdicts.join(' ')}`);
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\n`);
    throw err;
  } finally {
    for (const l of loads) await l.stop();
    await agent?.stop();
    await apache.stop();
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
});
