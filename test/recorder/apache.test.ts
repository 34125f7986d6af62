// Debian's apache2 (prefork, our own config and prefix dir, a port the kernel picks) under `leakscope run`:
// it serves curl requests, is stopped by its PID, and the trace holds the APR pool tree of the
// child (request -> transaction -> pchild) with pool allocations attributed to httpd's callers.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Event } from '../../src/model/events.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { buildRecorder, programs, traceEvents, workDir } from './harness.js';
import { freePort } from '../support/ports.js';
import { spawnCli } from '../support/cli.js';

let PORT = 0; // set in before(): a port the kernel picks
const MODULES = '/usr/lib/apache2/modules';

function portOpen(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(PORT, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function config(dir: string): string {
  return `ServerRoot "${dir}"
ServerName localhost
Listen 127.0.0.1:${PORT}
PidFile "${dir}/httpd.pid"
ErrorLog "${dir}/error.log"
LogLevel warn
Mutex file:${dir} default
User nobody
Group nogroup
LoadModule mpm_prefork_module ${MODULES}/mod_mpm_prefork.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
StartServers 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 2
DocumentRoot "${dir}/htdocs"
<Directory "${dir}/htdocs">
  Require all granted
</Directory>
`;
}

/** Builds test/programs/mod_rec_leaky.c with apxs (Debian's apache2-dev) into dir. */
function buildModule(dir: string): string {
  copyFileSync(join(programs, 'mod_rec_leaky.c'), join(dir, 'mod_rec_leaky.c'));
  execFileSync('apxs', ['-c', 'mod_rec_leaky.c'], { cwd: dir, stdio: 'ignore' });
  return join(dir, '.libs', 'mod_rec_leaky.so');
}

describe('apache2 under leakscope run', () => {
  before(async () => {
    PORT = await freePort();
    buildRecorder();
    assert.ok(existsSync('/usr/sbin/apache2'), 'Debian apache2 is needed (.ci/run installs it)');
  });

  // httpd -X calls exit() from its MPM module's frame; apr_pool_terminate, an exit handler, then
  // unloads the modules and goes on destroying pools (our hooks walk the stack through the
  // unloaded module's frame: libunwind used to fault there, in about 40% of runs).
  it('stopped by SIGTERM in -X mode, exits as apache2 does (0), with its report: the module\'s pool leak', async () => {
    for (let attempt = 0; attempt < 4; attempt++) {
      const dir = workDir('apache-x');
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, 'htdocs'));
      const mod = buildModule(dir);
      // The modules Debian enables by default: more libraries unloaded at exit, as users run it.
      const debian = ['access_compat', 'alias', 'auth_basic', 'authn_core', 'authn_file', 'authz_host', 'authz_user', 'autoindex',
        'deflate', 'dir', 'env', 'filter', 'mime', 'negotiation', 'reqtimeout', 'setenvif', 'status']
        .map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so\n`).join('');
      writeFileSync(join(dir, 'httpd.conf'), config(dir) + debian + 'TypesConfig /etc/mime.types\n' +
        `LoadModule rec_leaky_module ${mod}\n<Location /leak>\n  SetHandler rec-leaky\n</Location>\n`);
      const trace = join(dir, 'apache-x.lstrace');
      const report = join(dir, 'apache-x.json');
      const run = spawnCli(['run', '--format', 'json', '--report', report, '-o', trace, '--',
        '/usr/sbin/apache2', '-d', dir, '-f', join(dir, 'httpd.conf'), '-X'], { detached: true });
      let err = '';
      run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));
      let httpdPid = 0;
      try {
        await waitFor('httpd to listen', portOpen, 20_000);
        for (let i = 0; i < 30; i++) {
          const body = execFileSync('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${PORT}/leak`], { encoding: 'utf8' });
          assert.equal(body, 'leaked\n');
        }
        httpdPid = Number(readFileSync(join(dir, 'httpd.pid'), 'utf8').trim());
        process.kill(httpdPid, 'SIGTERM');
        assert.equal(await exited, 0, `attempt ${attempt + 1}: ${err}`);
      } finally {
        if (run.exitCode === null) {
          if (httpdPid) try { process.kill(httpdPid, 'SIGKILL'); } catch { /* gone */ }
          run.kill('SIGKILL');
        }
      }
      assert.doesNotMatch(err, /killed by/);
      const r = JSON.parse(readFileSync(report, 'utf8')) as import('../../src/analyses/result.js').AnalysisResult;
      const p = r.processes.find((x) => x.pid === httpdPid)!;
      assert.equal(p.exited, true);
      assert.equal(p.exitCode, 0);
      // The pchild pool was destroyed at exit with its 30 leaked blocks; they were allocated by
      // the module's handler, named from the module that is unloaded by then.
      const { events } = await traceEvents(trace);
      const tables = new SymbolTables();
      for (const e of events) {
        if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
        else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      }
      const leaks = events.filter((e) => e.kind === 'pool-alloc' && e.size === 2048 && tables.scope(e.pid).stackFrames(e.stack)[0]?.fn === 'handler');
      assert.equal(leaks.length, 30);
      assert.ok(leaks.every((e) => tables.scope(e.pid).stackFrames((e as { stack: number }).stack)[0]!.module === mod));
      // Pools destroyed on the way out (after exit() was called from the MPM module) were recorded.
      assert.ok(events.some((e) => e.kind === 'pool-destroy' && tables.scope(e.pid).stackFrames(e.stack).some((f) => f.fn === 'exit')));
    }
  });

  it('gives a pool tree with APR pool allocations attributed to their callers', async () => {
    const dir = workDir('apache');
    chmodSync(dir, 0o755);  // the children run as nobody
    mkdirSync(join(dir, 'htdocs'));
    writeFileSync(join(dir, 'htdocs', 'index.html'), 'hello from leakscope\n');
    writeFileSync(join(dir, 'httpd.conf'), config(dir));
    const trace = join(dir, 'apache.lstrace');
    const run = spawnCli(['run', '--format', 'json', '-o', trace, '--',
      '/usr/sbin/apache2', '-d', dir, '-f', join(dir, 'httpd.conf'), '-DFOREGROUND'],
      // httpd signals its whole process group when it stops: give it one of its own.
      { detached: true });
    let out = '';
    let err = '';
    run.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    run.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => run.on('exit', (code) => r(code)));
    let httpdPid = 0;
    try {
      await waitFor('httpd to listen', portOpen, 20_000);
      for (let i = 0; i < 20; i++) {
        const body = execFileSync('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${PORT}/index.html`], { encoding: 'utf8' });
        assert.equal(body, 'hello from leakscope\n');
      }
      httpdPid = Number(readFileSync(join(dir, 'httpd.pid'), 'utf8').trim());
      assert.ok(httpdPid > 0);
      process.kill(httpdPid, 'SIGTERM');
      assert.equal(await exited, 0, err);
    } finally {
      if (run.exitCode === null) {
        if (httpdPid) try { process.kill(httpdPid, 'SIGKILL'); } catch { /* gone */ }
        run.kill('SIGKILL');
      }
    }

    const { events, warnings } = await traceEvents(trace);
    assert.deepEqual(warnings, []);
    const tables = new SymbolTables();
    for (const e of events) {
      if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
      else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      else if (e.kind === 'fork') tables.fork(e.pid, e.parentPid);
    }

    // Pools in file order: addresses are reused, so each create starts a new record.
    interface Pool { pid: number; addr: number; parent?: Pool; tag: string; allocs: Extract<Event, { kind: 'pool-alloc' }>[] }
    const current = new Map<string, Pool>();
    const pools: Pool[] = [];
    const key = (pid: number, addr: number): string => `${pid}:${addr}`;
    const forks = events.filter((e) => e.kind === 'fork') as Extract<Event, { kind: 'fork' }>[];
    const parentOf = new Map(forks.map((f) => [f.pid, f.parentPid]));
    const lookup = (pid: number, addr: number): Pool | undefined => {
      for (let p: number | undefined = pid; p !== undefined; p = parentOf.get(p)) {
        const hit = current.get(key(p, addr));
        if (hit) return hit;
      }
      return undefined;
    };
    for (const e of events) {
      if (e.kind === 'pool-create') {
        assert.equal(e.poolKind, 'apr');
        const p: Pool = { pid: e.pid, addr: e.pool, parent: lookup(e.pid, e.parent), tag: e.tag, allocs: [] };
        current.set(key(e.pid, e.pool), p);
        pools.push(p);
      } else if (e.kind === 'pool-tag') {
        const p = lookup(e.pid, e.pool);
        if (p) p.tag = e.tag;
      } else if (e.kind === 'pool-alloc') {
        lookup(e.pid, e.pool)?.allocs.push(e);
      }
    }
    const requests = pools.filter((p) => p.tag === 'request');
    assert.ok(requests.length >= 20, `${requests.length} request pools for 20 requests`);
    const children = new Set(forks.map((f) => f.pid));
    const chained = requests.filter((r) => children.has(r.pid) && r.parent?.tag === 'transaction' && r.parent.parent?.tag === 'pchild');
    assert.ok(chained.length >= 20, 'request pools hang under transaction under pchild, in the forked child');

    // Pool allocations carry their callers: httpd's own functions, from the apache2 binary.
    const allocs = requests.flatMap((r) => r.allocs);
    assert.ok(allocs.length >= 20 * 5, `${allocs.length} allocations in request pools`);
    let attributed = 0;
    const callers = new Set<string>();
    for (const a of allocs) {
      const frames = tables.scope(a.pid).stackFrames(a.stack);
      const caller = frames.find((f) => f.fn.startsWith('ap_') && f.module === '/usr/sbin/apache2');
      if (caller) { attributed++; callers.add(caller.fn); }
    }
    assert.ok(attributed >= allocs.length * 0.9, `${attributed} of ${allocs.length} attributed to httpd functions`);
    assert.ok(callers.size >= 3, `callers: ${[...callers].join(', ')}`);

    // And the analysis sees both processes with their pool classes.
    const result = JSON.parse(out) as import('../../src/analyses/result.js').AnalysisResult;
    const child = result.processes.find((p) => children.has(p.pid) && p.poolClasses.some((c) => c.name === 'request'));
    assert.ok(child, 'the forked child has a "request" pool class');
    assert.ok(child!.poolClasses.find((c) => c.name === 'request')!.created >= 20);
  });
});
