// `leakscope agent` with `allocator: luajit`: the GC heap tracer runs in windows, and the last
// window's leaking Lua line is a site with verdict leak in /metrics and on top of the heap profile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { tempDir } from '../attach/helpers.js';
import { freePort } from '../support/ports.js';
import { curlBatch, LEAK_LINE, startLuaServer } from '../luajit/nginx-server.js';
import { get, parseMetrics, startAgent, until, type AgentRun, type Sample } from './support.js';

const dir = tempDir('agent-luajit');

test('agent, LuaJIT windows: the leaking Lua line is a leak in the metrics and the profile', { timeout: 120_000 }, async () => {
  const server = await startLuaServer(1);
  let agent: AgentRun | undefined;
  let busy = true;
  const load = (async () => {
    let b = 0;
    while (busy) await curlBatch(server.port, `c${b++}`, 100);
  })();
  try {
    const port = await freePort();
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `listen: 127.0.0.1:${port}
sample: 1s
window: 1m
targets:
  - name: lua
    pid: ${server.master}
    allocator: luajit
    luajit: { every: 8s, for: 8s }
`);
    agent = await startAgent(['--config', config]);
    const site = await until('the leaking Lua line in /metrics', 80000, async () => {
      // a window that failed is said in the log: no need to wait for the next
      if (/LuaJIT window:/.test(agent!.stderr())) return 'failed' as const;
      const ms = parseMetrics((await get(port, '/metrics')).body.toString());
      return ms.find((s) => s.name === 'leakscope_site_growth_verdict' && s.labels.target === 'lua' && s.labels.verdict === 'leak' && s.value === 1 && s.labels.site!.includes(`leaky.lua:${LEAK_LINE}`));
    }, 1000);
    assert.notEqual(site, 'failed', agent.stderr());
    assert.equal((site as Sample).labels.kind, 'luajit');
    const ms = parseMetrics((await get(port, '/metrics')).body.toString());
    assert.equal(ms.find((s) => s.name === 'leakscope_target_info' && s.labels.target === 'lua')?.labels.mode, 'luajit');
    assert.ok((ms.find((s) => s.name === 'leakscope_probe_hits_total' && s.labels.target === 'lua')?.value ?? 0) > 0);
    const prof = Profile.decode(gunzipSync((await get(port, `/debug/pprof/heap?pid=${server.workers[0]}`)).body));
    const strings = prof.stringTable.strings;
    const inuse = prof.sampleType.findIndex((t) => strings[Number(t.type)] === 'inuse_space');
    const fileOf = new Map(prof.function.map((f) => [Number(f.id), strings[Number(f.filename)]]));
    const lineOf = new Map(prof.location.map((l) => [Number(l.id), `${fileOf.get(Number(l.line[0]!.functionId))}:${l.line[0]!.line}`]));
    const top = [...prof.sample].sort((x, y) => Number(y.value[inuse]) - Number(x.value[inuse]))[0]!;
    assert.match(lineOf.get(Number(top.locationId[0]))!, new RegExp(`leaky\\.lua:${LEAK_LINE}$`));
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\n`);
    throw err;
  } finally {
    busy = false;
    await load;
    await agent?.stop();
    await server.stop();
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
});
