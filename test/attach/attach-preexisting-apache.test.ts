// `leakscope attach` on Debian's apache2 (prefork) that was running, and leaking, before the
// attach: our module (test/programs/mod_pool_leak.c, built with apxs) puts 2 KiB into the
// child's process pool (`pchild`, made at child start-up) on every /leak request, and 4 KiB into
// the connection's pool (prefork's `transaction`, cleared when the connection ends) on /grow.
// Both pools exist long before the attach: only the discovery walk can find them. What the
// report says of the live pools is checked against gdb's own walk of each child's pool tree.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { attachInBackground, parseReport, root, tempDir, type CliRun } from './helpers.js';
import { keepaliveBursts, startApache, type Server } from './servers.js';
import { aprTypes, gdbPools } from './gdb-pools.js';
import { freePort } from '../support/ports.js';
import { FOUND_SITE } from '../../src/analyses/pools.js';
import type { AnalysisResult, PoolReport, ProcessReport } from '../../src/analyses/result.js';

const SOURCE = join(root, 'test/programs/mod_pool_leak.c');
const LEAK_LINE = readFileSync(SOURCE, 'utf8').split('\n').findIndex((l) => l.includes('LEAK:')) + 1;

let dir: string;
let server: Server;
let types: string;
/** pchild's address per child pid, as the module reports it. */
const pchild = new Map<number, string>();

function note(bodies: string[]): void {
  for (const b of bodies) {
    const m = /^pid (\d+) pchild (?:0x)?([0-9a-f]+)/.exec(b);
    if (m) pchild.set(Number(m[1]), `0x${m[2]}`);
  }
}

/** Requests for `ms`: short keepalive connections on both children at once, and halfway one
 *  long connection per child that grows its transaction pool well past its usual size. */
async function traffic(ms: number): Promise<void> {
  const end = Date.now() + ms;
  let long = false;
  while (Date.now() < end) {
    if (!long && Date.now() > end - ms / 2) {
      long = true;
      note(await keepaliveBursts(server.port, 2, Array.from({ length: 40 }, () => '/grow')));
    }
    note(await keepaliveBursts(server.port, 2, ['/leak', '/grow', '/leak']));
    await new Promise((r) => setTimeout(r, 40));
  }
}

async function attach(extra: string[]): Promise<AnalysisResult> {
  const run = attachInBackground(['--pid', String(server.master.pid), '--children', '--duration', '9s', '--pool-sample', '500ms', '--format', 'json', ...extra]);
  await run.started;
  await traffic(8000);
  const r: CliRun = await run.done;
  assert.equal(r.code, 0, r.stderr);
  return parseReport(r);
}

function flat(forest: PoolReport[]): PoolReport[] {
  const out: PoolReport[] = [];
  const walk = (p: PoolReport) => {
    out.push(p);
    p.children.forEach(walk);
  };
  forest.forEach(walk);
  return out;
}

function childrenOf(report: AnalysisResult): ProcessReport[] {
  const kids = report.processes.filter((p) => p.ppid === server.master.pid);
  assert.deepEqual(kids.map((p) => p.pid).sort(), [...pchild.keys()].sort(), 'every child that served requests is traced, and no other');
  return kids;
}

function noAnomalies(p: ProcessReport): void {
  const a = p.anomalies;
  assert.deepEqual([a.unknownPool, a.unknownPoolDestroy, a.inheritedPool ?? 0, a.unknownFree, a.doubleFree], [0, 0, 0, 0, 0], `process ${p.pid}: ${JSON.stringify(a)}`);
}

before(async () => {
  dir = tempDir('att-pre-apache');
  copyFileSync(SOURCE, join(dir, 'mod_pool_leak.c'));
  const b = spawnSync('apxs', ['-c', '-Wc,-g', '-o', 'mod_pool_leak.so', 'mod_pool_leak.c'], { cwd: dir, encoding: 'utf8' });
  assert.equal(b.status, 0, `apxs: ${b.stdout}${b.stderr}`);
  types = aprTypes(dir);
  const port = await freePort();
  server = await startApache(dir, port, `LoadModule pool_leak_module ${join(dir, '.libs/mod_pool_leak.so')}
<LocationMatch "^/(leak|grow)$">
  SetHandler pool-leak
</LocationMatch>
StartServers 2
MinSpareServers 2
MaxSpareServers 2
MaxRequestWorkers 2
`);
  // the leak runs for a while before anyone attaches: 240 requests, 240 KiB in each child's pchild
  for (let i = 0; i < 60; i++) note(await keepaliveBursts(port, 2, ['/leak', '/grow', '/leak']));
  assert.equal(pchild.size, 2, `both children served the warm-up: ${[...pchild.keys()].join(' ')}`);
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('default profile: the pchild that grew before the attach is found by its tag and grows; the transaction pool is bounded; the live pools are gdb\'s', async () => {
  const report = await attach([]);
  assert.equal(report.lost, 0);
  for (const p of childrenOf(report)) {
    noAnomalies(p);
    const pools = flat(p.pools);
    const child = pools.find((x) => x.tag === 'pchild');
    assert.ok(child, `process ${p.pid}: pools ${pools.map((x) => x.tag).join(' ')}`);
    assert.equal(child.pool, pchild.get(p.pid), 'the module\'s pchild');
    assert.equal(child.found, true);
    assert.equal(child.createSite, FOUND_SITE);
    assert.ok(child.verdict && ['leak', 'growing'].includes(child.verdict.verdict), `pchild: ${child.verdict?.explanation}`);
    assert.ok(child.bytes > 240 * 2048, `pchild holds the warm-up's leak and more: ${child.bytes}`);
    const trans = pools.find((x) => x.tag === 'transaction');
    assert.equal(trans?.verdict?.verdict, 'bounded', `transaction: ${trans?.verdict?.explanation}`);
    assert.equal(trans.parent, child.pool, 'prefork makes the transaction pool under pchild');
    // classes count what the trace saw: pchild existed before, request pools were made in it
    const cls = (name: string) => p.poolClasses.find((c) => c.name === name);
    assert.deepEqual([cls('pchild')?.created, cls('pchild')?.found, cls('pchild')?.destroyed], [0, 1, 0]);
    const req = cls('request');
    assert.ok(req && req.created >= 100 && req.found === 0 && req.destroyed === req.created, `request pools: ${JSON.stringify(req && { c: req.created, f: req.found, d: req.destroyed })}`);

    // The server is idle now: gdb's walk of the child's tree is what the report holds alive.
    const truth = gdbPools(p.pid, types, 'gdb-apr-pools.py');
    const mine = new Map(pools.map((x) => [x.pool, x]));
    assert.deepEqual([...mine.keys()].sort(), truth.map((x) => x.pool).sort(), `process ${p.pid}: live pools`);
    for (const g of truth) {
      const x = mine.get(g.pool)!;
      assert.equal(x.parent, g.parent, `${g.tag} ${g.pool}: parent`);
      assert.equal(x.tag, g.tag, `${g.pool}: tag`);
      assert.equal(x.bytes, g.bytes, `${g.tag} ${g.pool}: bytes`);
    }
  }
});

test('--pool-allocs: the same pchild is a leak fed by the module\'s line, with no anomaly', async () => {
  const report = await attach(['--pool-allocs']);
  assert.equal(report.lost, 0);
  for (const p of childrenOf(report)) {
    noAnomalies(p);
    const child = flat(p.pools).find((x) => x.tag === 'pchild');
    assert.ok(child?.found, `process ${p.pid}: a found pchild`);
    assert.equal(child.pool, pchild.get(p.pid));
    assert.equal(child.verdict?.verdict, 'leak', child.verdict?.explanation);
    assert.ok(child.sites.some((s) => s.label.includes(`mod_pool_leak.c:${LEAK_LINE}`)), `feeders: ${child.sites.map((s) => s.label).join(', ')}`);
    const cls = p.poolClasses.find((c) => c.name === 'pchild');
    assert.equal(cls?.verdict.verdict, 'leak');
    assert.equal(cls?.created, 0);
    // cleanups allocating in dying pools (mod_log_config's, each request) make no pool of their own
    const truth = gdbPools(p.pid, types, 'gdb-apr-pools.py');
    assert.deepEqual(flat(p.pools).map((x) => x.pool).sort(), truth.map((x) => x.pool).sort(), `process ${p.pid}: live pools`);
  }
});

test('doctor --pid CHILD: says the pools alive before attach are found, as many as gdb walks, with the layout confirmed', () => {
  const pid = [...pchild.keys()][0]!;
  const truth = gdbPools(pid, types, 'gdb-apr-pools.py');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'doctor', '--pid', String(pid)], { cwd: root, encoding: 'utf8' });
  assert.match(r.stdout, new RegExp(`pools alive before attach \\(apr\\): ${truth.length} found in process ${pid} now`), r.stdout);
  assert.match(r.stdout, /Layout confirmed by the allocator's code: the parent link is at \+0/);
});
