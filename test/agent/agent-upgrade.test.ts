// nginx's binary upgrade under the agent: the daemonized master (a private copy of Debian's
// nginx) gets USR2, forks and execs a new master of the binary, which starts its own workers;
// the old master then quits (QUIT). The agent ends up tracing the new master and its workers,
// with their roles, and their pools (held connections' pools appear in the new workers).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../attach/helpers.js';
import { HeldConnections, waitForPort } from '../attach/servers.js';
import { commandOf, pidAlive, ppidOf } from '../../src/proc/processes.js';
import { freePort } from '../support/ports.js';
import { scrape, startAgent, until, type AgentRun, type Sample } from './support.js';

const dir = tempDir('agent-upgrade');

const pidsOf = (ms: Sample[], role: string): number[] =>
  ms.filter((s) => s.name === 'leakscope_process_outstanding_bytes' && s.labels.role === role).map((s) => Number(s.labels.pid)).sort((a, b) => a - b);

test('agent follows a binary upgrade (USR2, then QUIT of the old master)', { timeout: 120_000 }, async () => {
  const port = await freePort();
  mkdirSync(join(dir, 'logs'));
  const exe = join(dir, 'nginx');
  copyFileSync('/usr/sbin/nginx', exe);
  const conf = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  // daemonized, as in production: nginx refuses USR2 while the process that started it waits
  writeFileSync(conf, `daemon on;
worker_processes 2;
pid ${pidFile};
error_log ${join(dir, 'logs/error.log')};
events { worker_connections 64; }
http {
  access_log off;
  keepalive_timeout 300s;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } }
}
`);
  const started = spawnSync(exe, ['-p', dir, '-c', conf, '-e', join(dir, 'logs/error.log')], { encoding: 'utf8' });
  assert.equal(started.status, 0, started.stderr);
  const masters = new Set<number>();
  let agent: AgentRun | undefined;
  let held: HeldConnections | undefined;
  try {
    await waitForPort(port);
    const oldMaster = Number(readFileSync(pidFile, 'utf8'));
    masters.add(oldMaster);
    const aport = await freePort();
    agent = await startAgent(['--exe', exe, '--listen', `127.0.0.1:${aport}`, '--sample', '500ms', '--window', '20s']);
    await until('the old master and its workers traced', 20000, async () => {
      const ms = await scrape(aport);
      return pidsOf(ms, 'master').includes(oldMaster) && pidsOf(ms, 'worker').length === 2 ? true : undefined;
    });
    process.kill(oldMaster, 'SIGUSR2');
    const newMaster = await until('the new master', 20000, async () => {
      const ms = await scrape(aport);
      return [...pidsOf(ms, 'worker'), ...pidsOf(ms, 'master')].find((p) => ppidOf(p) === oldMaster && commandOf(p).includes('master process'));
    });
    masters.add(newMaster);
    // the new master has its own workers: then the old one goes
    await until('the new workers', 20000, async () => (pidsOf(await scrape(aport), 'worker').filter((p) => ppidOf(p) === newMaster).length === 2 ? true : undefined));
    process.kill(oldMaster, 'SIGQUIT');
    await until('the new master and its workers alone', 20000, async () => {
      const ms = await scrape(aport);
      const m = pidsOf(ms, 'master');
      const w = pidsOf(ms, 'worker');
      return m.length === 1 && m[0] === newMaster && w.length === 2 && w.every((p) => ppidOf(p) === newMaster) ? true : undefined;
    });
    // the new workers' probes work: held connections' pools are seen there
    held = await HeldConnections.open(port, 4);
    held.every(300);
    await until('connection pools in the new workers', 20000, async () => {
      const ms = await scrape(aport);
      const pools = ms.filter((s) => s.name === 'leakscope_process_live_pools' && s.labels.role === 'worker').reduce((n, s) => n + s.value, 0);
      return pools >= 4 ? true : undefined;
    });
    assert.ok(pidAlive(newMaster));
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\nnginx's log:\n${readFileSync(join(dir, 'logs/error.log'), 'utf8')}\n`);
    throw err;
  } finally {
    held?.close();
    await agent?.stop();
    for (const m of masters) {
      try {
        process.kill(m, 'SIGTERM');
      } catch {
        // gone
      }
    }
    for (const m of masters) await until('nginx stopped', 10000, async () => (pidAlive(m) ? undefined : true)).catch(() => undefined);
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
});
