// Debian's nginx (master + 2 workers, our own config and prefix dir, a port the kernel picks) under
// `leakscope run`: it serves curl requests, is stopped by its master's PID, and the trace holds
// the master and each forked worker as its own process, with the worker's allocations on
// nginx's own stacks.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { prepareNginx, waitForPort } from '../attach/servers.js';
import { buildRecorder, workDir } from './harness.js';
import { freePort } from '../support/ports.js';
import { spawnCli } from '../support/cli.js';

let PORT = 0; // set in before(): a port the kernel picks

describe('nginx under leakscope run', () => {
  before(async () => {
    PORT = await freePort();
    buildRecorder();
    assert.ok(existsSync('/usr/sbin/nginx'), 'Debian nginx is needed (.ci/run installs it)');
  });

  it('traces the master and each forked worker as its own process', async () => {
    const dir = workDir('nginx');
    const { exe, conf } = prepareNginx(dir, PORT, 2);
    const trace = join(dir, 'nginx.lstrace');
    const report = join(dir, 'nginx.json');
    const run = spawnCli(['run', '--trace', trace, '-o', report, '--',
      exe, '-p', dir, '-c', conf, '-e', join(dir, 'logs/error.log')]);
    let err = '';
    run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));
    let master = 0;
    try {
      await waitForPort(PORT, 20_000);
      for (let i = 0; i < 30; i++) {
        assert.equal(execFileSync('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${PORT}/`], { encoding: 'utf8' }), 'ok\n');
      }
      master = Number(readFileSync(join(dir, 'nginx.pid'), 'utf8').trim());
      assert.ok(master > 0);
      process.kill(master, 'SIGQUIT'); // graceful: the workers finish and exit, then the master
      assert.equal(await exited, 0, err);
    } finally {
      if (run.exitCode === null) {
        if (master) try { process.kill(master, 'SIGKILL'); } catch { /* gone */ }
        run.kill('SIGKILL');
      }
    }

    const r = JSON.parse(readFileSync(report, 'utf8')) as AnalysisResult;
    const m = r.processes.find((p) => p.pid === master);
    assert.ok(m, `the master ${master} is in the trace: ${r.processes.map((p) => p.pid).join(',')}`);
    const workers = r.processes.filter((p) => p.ppid === master);
    // Two workers; nginx may also fork a cache manager only when a cache is configured (not here).
    assert.equal(workers.length, 2, JSON.stringify(r.processes.map((p) => [p.pid, p.ppid, p.command])));
    for (const w of workers) {
      assert.ok(w.exited, `worker ${w.pid} exited`);
      assert.ok(w.allocated.count > 0, `worker ${w.pid} allocated`);
      // The worker's own allocations are on nginx's stacks (symbolized from the binary).
      const fns = new Set(w.sites.flatMap((s) => s.stack.map((f) => f.fn)));
      assert.ok([...fns].some((f) => /^ngx_/.test(f ?? '')), `worker ${w.pid} sites name nginx functions: ${[...fns].slice(0, 10).join(', ')}`);
    }
    assert.ok(m.allocated.count > workers[0]!.allocated.count / 100, 'the master allocated too');
  });
});
