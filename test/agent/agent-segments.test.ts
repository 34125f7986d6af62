// Rolling trace segments: the agent on our pre-forked C server (its own pool profile, events
// mode) writes a segment per second, deletes those past their age, and each segment stands
// alone: `leakscope analyze` of one shows the leaking pools (live from before it started, and
// new ones), by name, and `leakscope report` writes its page.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnalysisResult, PoolReport } from '../../src/analyses/result.js';
import { buildProgram, root, startReady, terminate, tempDir } from '../attach/helpers.js';
import { cliSync } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import { startAgent, traffic, until, type AgentRun } from './support.js';

const dir = tempDir('agent-seg');

test('segments: rotated, aged out, each one readable alone', { timeout: 120_000 }, async () => {
  const prog = buildProgram('att-server', dir);
  const port = await freePort();
  const server = await startReady(prog, [String(port), '2']);
  const segs = join(dir, 'segments');
  let agent: AgentRun | undefined;
  let load: ReturnType<typeof traffic> | undefined;
  try {
    const aport = await freePort();
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `listen: 127.0.0.1:${aport}
sample: 500ms
window: 10s
segments: { dir: ${segs}, every: 1s, maxAge: 4s }
targets:
  - name: srv
    exe: ${prog}
    allocator: ${join(root, 'test/programs/att-pool.profile.json')}
    poolSample: 500ms
`);
    agent = await startAgent(['--config', config]);
    load = traffic(port, '/leak', 1, 20);
    const first = await until('a closed segment', 20000, async () => {
      const f = readdirSync(segs).sort();
      return f.length >= 2 ? f[0] : undefined;
    });
    // the oldest is deleted once past its age, while new ones keep coming
    await until('the first segment aged out', 30000, async () => (existsSync(join(segs, first!)) ? undefined : true));
    assert.ok(readdirSync(segs).length <= 8, `segments kept: ${readdirSync(segs).length}`);
    await load.stop();
    load = undefined;
    await agent.stop();
    assert.equal(await agent.exited, 0, agent.stderr());
  } finally {
    await load?.stop();
    await agent?.stop();
    await terminate(server);
  }
  const files = readdirSync(segs).filter((f) => f.endsWith('.lstrace')).sort();
  assert.ok(files.length >= 2);
  // a middle segment: the session pools it starts with were made before it began
  const seg = join(segs, files[files.length - 2]!);
  const r = cliSync(['analyze', seg, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as AnalysisResult;
  const workers = result.processes.filter((p) => p.poolClasses.some((c) => c.name === 'session'));
  assert.ok(workers.length >= 1, `processes: ${result.processes.map((p) => `${p.pid} ${p.poolClasses.map((c) => c.name).join(',')}`).join('; ')}`);
  let live = 0;
  for (const w of workers) {
    const s = w.poolClasses.find((c) => c.name === 'session')!;
    live += s.live;
    const all = (ps: PoolReport[]): PoolReport[] => ps.flatMap((p) => [p, ...all(p.children)]);
    const sites = all(w.pools).map((p) => p.createSite);
    assert.ok(sites.some((c) => c.includes('remember_session')), `symbolized: the leaking function is named: ${sites.join(', ')}`);
  }
  assert.ok(live >= 10, `live session pools in the segment: ${live}`);
  const html = join(dir, 'seg.html');
  const rep = cliSync(['report', seg, '-o', html]);
  assert.equal(rep.code, 0, rep.stderr);
  assert.ok(existsSync(html));
});
