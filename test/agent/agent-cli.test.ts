// `leakscope agent`: its config errors (one line naming the file, line and key), what it refuses
// (a non-loopback address without authentication), and what it serves to whom: the bearer
// token, TLS, checked query parameters, and the HTTP side running as an unprivileged user.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { tempDir } from '../attach/helpers.js';
import { cli } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import { get, parseMetrics, startAgent, until } from './support.js';
import { parseConfig } from '../../src/agent/config.js';
import { agentConfig } from '../../src/agent/flags.js';
import { checkExposure } from '../../src/agent/server.js';
import { UserError } from '../../src/cli/errors.js';

const dir = tempDir('agent-cli');

function agentCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cli(['agent', ...args], { timeoutMs: 30000 });
}

function config(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

// the agents these tests start wait on their own timers: run side by side
describe('agent command', { concurrency: true, timeout: 120_000 }, () => {
  it('bad config: one line naming the file, the line and the key', () => {
    const cases: [string, string, RegExp][] = [
      ['unknown.yaml', 'listen: 127.0.0.1:9464\ntargets:\n  - name: web\n    exee: /usr/sbin/nginx\n', /^\S*unknown\.yaml:4: targets\[0\]\.exee: unknown key \(did you mean "exe"\?\)$/],
      ['sample.yaml', 'sample: fast\ntargets:\n  - exe: /usr/sbin/nginx\n', /^\S*sample\.yaml:1: sample: "fast" is not a duration/],
      ['type.yaml', 'topSites: many\ntargets:\n  - exe: /usr/sbin/nginx\n', /^\S*type\.yaml:1: topSites: expected a whole number from 1 to 1000$/],
      ['two.yaml', 'targets:\n  - exe: /usr/sbin/nginx\n    process: nginx\n', /^\S*two\.yaml:2: targets\[0\]: give one of exe:, process:, unit:, pid:, not several$/],
      ['relative.yaml', 'targets:\n  - exe: nginx\n', /^\S*relative\.yaml:2: targets\[0\]\.exe: "nginx" is not an absolute path/],
      ['syntax.yaml', 'targets:\n  - exe: /usr/sbin/nginx\n   bad: [\n', /^\S*syntax\.yaml:3: not valid YAML or JSON: /],
      ['empty.yaml', 'listen: 127.0.0.1:9464\n', /^\S*empty\.yaml: targets: no targets: list at least one/],
      ['listen.json', '{"listen": "127.0.0.1:99999", "targets": [{"exe": "/usr/sbin/nginx"}]}', /^\S*listen\.json:1: listen: "127\.0\.0\.1:99999" is not HOST:PORT/],
      ['window.yaml', 'sample: 10s\nwindow: 30s\ntargets:\n  - exe: /usr/sbin/nginx\n', /^\S*window\.yaml:2: window: must hold at least 8 samples/],
      ['dup.yaml', 'targets:\n  - exe: /usr/sbin/nginx\n  - exe: /usr/local/sbin/nginx\n', /^\S*dup\.yaml:3: targets\[1\]\.name: "nginx" names two targets/],
      ['luajit.yaml', 'targets:\n  - pid: 1\n    luajit: { every: 1m, for: 2m }\n', /^\S*luajit\.yaml:3: targets\[0\]\.luajit\.for: must not be longer than luajit\.every$/],
      ['budget.yaml', 'budget:\n  maxProbeRate: lots\ntargets:\n  - exe: /usr/sbin/nginx\n', /^\S*budget\.yaml:2: budget\.maxProbeRate: expected a whole number from 0 to 1000000000$/],
      ['budgetkey.yaml', 'targets:\n  - exe: /usr/sbin/nginx\n    budget: { maxProbeRates: 10 }\n', /^\S*budgetkey\.yaml:3: targets\[0\]\.budget\.maxProbeRates: unknown key \(did you mean "maxProbeRate"\?\)$/],
      ['sustain.yaml', 'targets:\n  - exe: /usr/sbin/nginx\n    budget:\n      sustain: 2s\n', /^\S*sustain\.yaml:4: targets\[0\]\.budget\.sustain: "2s" is not a duration of at least 6000 ms/],
    ];
    for (const [name, text, want] of cases) {
      assert.throws(() => parseConfig(text, join(dir, name)), (err: Error) => {
        assert.ok(err instanceof UserError, name);
        assert.match(err.message, want, name);
        assert.doesNotMatch(err.message, /\n/, `${name}: one line`);
        return true;
      });
    }
    const good = parseConfig('{"targets": [{"exe": "/usr/sbin/nginx", "allocator": ["nginx"]}, {"process": "apache2"}, {"unit": "nginx.service", "name": "unit"}]}', 'good.json');
    assert.deepEqual(good.targets.map((t) => t.name), ['nginx', 'apache2', 'unit']);
    assert.deepEqual(good.listen, { host: '127.0.0.1', port: 9464 });
    // the budget: defaults, a top-level budget for every target, a target's own keys over it
    assert.deepEqual(good.targets[0]!.budget, { maxProbeRate: 10000, sustainMs: 10_000, backoffMs: 600_000 });
    const budgets = parseConfig('budget: { maxProbeRate: 800, backoff: 1h }\ntargets:\n  - exe: /usr/sbin/nginx\n  - process: apache2\n    budget: { maxProbeRate: 0, sustain: 1m }\n', 'budgets.yaml');
    assert.deepEqual(budgets.targets.map((t) => t.budget), [
      { maxProbeRate: 800, sustainMs: 10_000, backoffMs: 3_600_000 },
      { maxProbeRate: 0, sustainMs: 60_000, backoffMs: 3_600_000 },
    ]);
  });

  it('the command: a bad config or a non-loopback address without auth is one line and exit 2', async () => {
    const [bad, missing, open] = await Promise.all([
      agentCli(['--config', config('unknown.yaml', 'targets:\n  - name: web\n    exee: /usr/sbin/nginx\n'), '--check']),
      agentCli(['--config', join(dir, 'nope.yaml'), '--check']),
      agentCli(['--exe', '/usr/sbin/nginx', '--listen', '0.0.0.0:9464', '--check']),
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^leakscope: \S*unknown\.yaml:3: targets\[0\]\.exee: unknown key \(did you mean "exe"\?\)\n$/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^leakscope: \S*nope\.yaml: no such config file\n$/);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /^leakscope: refusing to listen on 0\.0\.0\.0:9464 without authentication: set a bearer token .* or say --insecure\n$/);
  });

  it('exposure: loopback is fine, anything else needs a token, TLS or --insecure', () => {
    const flags = { exe: ['/usr/sbin/nginx'] };
    assert.doesNotThrow(() => checkExposure(agentConfig({ ...flags, listen: '127.0.0.1:9464' })));
    assert.doesNotThrow(() => checkExposure(agentConfig({ ...flags, listen: '[::1]:9464' })));
    assert.throws(() => checkExposure(agentConfig({ ...flags, listen: '[::]:9464' })), /refusing to listen on :::9464/);
    assert.throws(() => checkExposure(agentConfig({ ...flags, listen: '192.0.2.1:9464' })), /refusing/);
    assert.doesNotThrow(() => checkExposure(agentConfig({ ...flags, listen: '0.0.0.0:9464', insecure: true })));
    const token = join(dir, 'token');
    writeFileSync(token, 'x'.repeat(32));
    assert.doesNotThrow(() => checkExposure(agentConfig({ ...flags, listen: '0.0.0.0:9464', tokenFile: token })));
    assert.doesNotThrow(() => checkExposure(agentConfig({ ...flags, listen: '0.0.0.0:9464', tlsCert: 'c.pem', tlsKey: 'k.pem' })));
    writeFileSync(join(dir, 'short'), 'abc');
    assert.throws(() => agentConfig({ ...flags, tokenFile: join(dir, 'short') }), /at least 16 characters/);
    assert.throws(() => agentConfig({ ...flags, tlsCert: 'c.pem' }), /--tls-cert and --tls-key go together/);
    assert.throws(() => agentConfig({}), /say what to watch/);
  });

  function httpsGet(port: number, path: string, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path, headers, rejectUnauthorized: false, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      // a request never answered fails the test instead of hanging it
      req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
      req.on('error', reject);
      req.end();
    });
  }

  it('token and TLS: requests without the token are refused; the HTTP side runs as nobody; a target not there is no crash', async () => {
    const token = 'leakscope-test-token-0123456789';
    const tokenFile = join(dir, 'token2');
    writeFileSync(tokenFile, `${token}\n`);
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    assert.equal(ssl.status, 0, ssl.stderr);
    const port = await freePort();
    // nothing runs this executable: the agent waits for it
    const agent = await startAgent(['--exe', join(dir, 'not-there'), '--listen', `0.0.0.0:${port}`, '--token-file', tokenFile, '--tls-cert', cert, '--tls-key', key, '--sample', '500ms', '--window', '10s']);
    try {
      assert.equal(await httpsGet(port, '/metrics', {}), 401);
      assert.equal(await httpsGet(port, '/metrics', { Authorization: 'Bearer wrong-token-wrong-token' }), 401);
      assert.equal(await httpsGet(port, '/metrics', { Authorization: `Bearer ${token}` }), 200);
      assert.equal(await httpsGet(port, '/healthz', {}), 200);
      assert.equal(await httpsGet(port, '/debug/pprof/heap?pid=12ab', { Authorization: `Bearer ${token}` }), 400);
      assert.equal(await httpsGet(port, '/?target=%3Cscript%3E', { Authorization: `Bearer ${token}` }), 400);
      assert.equal(await httpsGet(port, '/debug/pprof/heap?target=not-there', { Authorization: `Bearer ${token}` }), 200);
      // the HTTP side is a child of the agent, running as nobody
      const kids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/stat`, 'latin1').split(') ')[1]!.split(' ')[1] === String(agent.child.pid) && readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('web.');
        } catch {
          return false;
        }
      });
      assert.equal(kids.length, 1, 'one HTTP process');
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${kids[0]}/status`, 'latin1'))![1];
      assert.equal(uid, '65534');
      assert.match(agent.stderr(), /HTTP side as user nobody, uid 65534/);
    } finally {
      await agent.stop();
    }
    assert.equal(await agent.exited, 0, agent.stderr());
  });

  it('plain HTTP on loopback: methods, the up metric of a target with no process', async () => {
    const port = await freePort();
    const agent = await startAgent(['--exe', join(dir, 'not-there'), '--listen', `127.0.0.1:${port}`, '--sample', '500ms', '--window', '10s']);
    try {
      const ms = await until('a sample', 10000, async () => {
        const r = await get(port, '/metrics');
        const m = parseMetrics(r.body.toString());
        return m.some((s) => s.name === 'leakscope_agent_samples_total' && s.value >= 1) ? m : undefined;
      });
      assert.equal(ms.find((s) => s.name === 'leakscope_target_up')?.value, 0);
      assert.equal(ms.find((s) => s.name === 'leakscope_target_info')?.labels.mode, 'waiting');
      // OpenMetrics when asked for
      const om = await get(port, '/metrics', { Accept: 'application/openmetrics-text; version=1.0.0' });
      assert.match(String(om.headers['content-type']), /application\/openmetrics-text/);
      assert.match(om.body.toString(), /# EOF\n$/);
      const post = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/metrics', method: 'POST' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
        req.on('error', reject);
        req.end();
      });
      assert.equal(post, 405);
      assert.equal((await get(port, '/nope')).status, 404);
      const health = await get(port, '/healthz');
      assert.match(health.body.toString(), /^ok\nnot-there: no process\n$/);
    } finally {
      await agent.stop();
    }
    assert.equal(await agent.exited, 0);
  });
});
