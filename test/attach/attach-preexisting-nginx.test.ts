// `leakscope attach` on Debian's nginx with keepalive connections opened before the attach: the
// default profile finds each worker's cycle pool and the pools of those connections (from
// ngx_cycle), with the sizes gdb reads from the same structs with nginx's own types.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { attachInBackground, flatPools, parseReport, tempDir, until } from './helpers.js';
import { HeldConnections, startNginx } from './servers.js';
import { gdbPools, nginxTypes } from './gdb-pools.js';
import { freePort } from '../support/ports.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// the default profile (lifecycle probes), and --mode walk (no probe: the same walk at every sample)
for (const mode of ['events', 'walk']) test(`nginx, ${mode} mode: the cycle pool and the pools of keepalive connections opened before the attach are found, sized as gdb reads them`, async () => {
  const dir = tempDir('att-pre-nginx');
  dirs.push(dir);
  const types = nginxTypes(dir);
  const port = await freePort();
  const server = await startNginx(join(dir, 'srv'), port, 2);
  const held = await HeldConnections.open(port, 6);
  try {
    held.send();
    await until(() => held.responses >= 6, 'every held connection answered before the attach');
    assert.equal(held.responses, 6);
    const master = server.master.pid!;
    const run = attachInBackground(['--pid', String(master), '--children', '--duration', '3s', '--pool-sample', '500ms', '--format', 'json', '--mode', mode]);
    await run.started;
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    const workers = report.processes.filter((p) => p.ppid === master);
    assert.equal(workers.length, 2, `processes: ${report.processes.map((p) => `${p.pid}/${p.ppid}`).join(' ')}`);
    let connections = 0;
    for (const w of workers) {
      const truth = gdbPools(w.pid, types, 'gdb-nginx-pools.py');
      const mine = new Map(flatPools(w.pools).map((x) => [x.pool, x]));
      for (const g of truth) {
        const x = mine.get(g.pool);
        assert.ok(x, `worker ${w.pid}: the ${g.tag} pool ${g.pool} is in the report (live: ${[...mine.keys()].join(' ')})`);
        assert.equal(x.found, true, `${g.tag} ${g.pool} was found alive`);
        assert.equal(x.tag, g.tag);
        assert.equal(x.bytes, g.bytes, `${g.tag} ${g.pool}: bytes`);
      }
      // and nothing else: no pool the worker does not have
      assert.equal(mine.size, truth.length, `worker ${w.pid}: ${[...mine.values()].map((x) => `${x.tag}:${x.pool}`).join(' ')}`);
      connections += truth.filter((g) => g.tag === 'connection').length;
      assert.equal(w.anomalies.unknownPool + w.anomalies.unknownPoolDestroy, 0, JSON.stringify(w.anomalies));
    }
    assert.equal(connections, 6, 'the six keepalive connections, wherever the kernel put them');
  } finally {
    held.close();
    await server.stop();
  }
});
