// `leakscope attach` on Debian's apache2 (prefork) that was running, and leaking, before the
// attach: our module (test/programs/mod_pool_leak.c, built with apxs) puts 2 KiB into the
// child's process pool (`pchild`, made at child start-up) on every /leak request, and 4 KiB into
// the connection's pool (prefork's `transaction`, cleared when the connection ends) on /grow.
// Both pools exist long before the attach: only the discovery walk can find them. What the
// report says of the live pools is checked against gdb's own walk of each child's pool tree.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { attachInBackground, flatPools, parseReport, root, tempDir, until, type CliRun } from './helpers.js';
import { cliSync } from '../support/cli.js';
import { readTrace } from '../../src/trace/reader.js';
import type { Event } from '../../src/model/events.js';
import { childrenOf, keepaliveBursts, quiescent, startLeakingApache, type Server } from './servers.js';
import { aprTypes, gdbPools } from './gdb-pools.js';
import { FOUND_SITE } from '../../src/analyses/pools.js';
import type { AnalysisResult, ProcessReport } from '../../src/analyses/result.js';

const SOURCE = join(root, 'test/programs/mod_pool_leak.c');
const LEAK_LINE = readFileSync(SOURCE, 'utf8').split('\n').findIndex((l) => l.includes('LEAK:')) + 1;

let dir: string;
let server: Server;
let types: string;
/** pchild's address per child pid, as the module reports it (`note` keeps it). */
let pchild: Map<number, string>;
let note: (bodies: string[]) => void;

/** Requests for `ms`: short keepalive connections on both children at once, and halfway one
 *  long connection per child that grows its transaction pool well past its usual size. */
async function traffic(ms: number): Promise<void> {
  const end = Date.now() + ms;
  let long = false;
  while (Date.now() < end) {
    if (!long && Date.now() > end - ms / 2) {
      long = true;
      await longConnections();
    }
    note(await keepaliveBursts(server.port, 2, ['/leak', '/grow', '/leak']));
    await new Promise((r) => setTimeout(r, 40));
  }
}

/** One long connection (40 /grow) served by each child. Prefork gives a connection to whichever
 *  child accepts it first: on a loaded machine one child can serve both of two connections sent
 *  at once (the other not yet scheduled), so pairs are sent until every child has served one. */
async function longConnections(): Promise<void> {
  const served = new Set<number>();
  for (let i = 0; i < 20 && [...pchild.keys()].some((pid) => !served.has(pid)); i++) {
    const bodies = await keepaliveBursts(server.port, 2, Array.from({ length: 40 }, () => '/grow'));
    note(bodies);
    for (const b of bodies) served.add(Number(/^pid (\d+)/.exec(b)?.[1]));
  }
  assert.deepEqual([...served].sort(), [...pchild.keys()].sort(), 'every child served a long connection');
}

/** Attach, 8 s of traffic, then stop once the server has finished it (not after a fixed
 *  duration: on a loaded machine the traffic may outlast any) — gdb's walk afterwards sees the
 *  pools as the trace ended. `traced`: wall time from tracing live to the stop, in ns. */
async function attach(extra: string[]): Promise<{ report: AnalysisResult; traced: number }> {
  const master = server.master.pid!;
  const run = attachInBackground(['--pid', String(master), '--children', '--pool-sample', '500ms', '--format', 'json', ...extra]);
  await run.started;
  const t0 = process.hrtime.bigint();
  await traffic(8000);
  await quiescent([master, ...childrenOf(master)]);
  const traced = Number(process.hrtime.bigint() - t0);
  process.kill(run.pid, 'SIGTERM');
  const r: CliRun = await run.done;
  assert.equal(r.code, 0, r.stderr);
  return { report: parseReport(r), traced };
}

/** The master serves no request: its pools (found at attach) are steady, and it is shown traced
 *  for the whole session, not "0 µs traced — No data". */
function steadyParent(report: AnalysisResult, traced: number): void {
  const m = report.processes.find((p) => p.pid === server.master.pid);
  assert.ok(m, `the master is in the report: ${report.processes.map((p) => p.pid).join(' ')}`);
  assert.equal(m.verdict.verdict, 'steady', m.verdict.explanation);
  assert.ok(m.endT - m.startT >= traced, `master traced ${(m.endT - m.startT) / 1e9} s, at least ${traced / 1e9} s expected`);
  assert.ok(flatPools(m.pools).some((x) => x.tag === 'pconf' && x.found), `master's pools: ${flatPools(m.pools).map((x) => x.tag).join(' ')}`);
}

function tracedChildren(report: AnalysisResult): ProcessReport[] {
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
  types = aprTypes(dir);
  ({ server, pchild, note } = await startLeakingApache(dir));
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('default profile: the pchild that grew before the attach is found by its tag and grows; the transaction pool is bounded; the live pools are gdb\'s; the master is steady for its traced time', async () => {
  const { report, traced } = await attach([]);
  assert.equal(report.lost, 0);
  steadyParent(report, traced);
  for (const p of tracedChildren(report)) {
    noAnomalies(p);
    const pools = flatPools(p.pools);
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

test('--mode walk (no probe at all): the pchild found by its tag grows, the transaction pool does not, the live pools at the end are gdb\'s', async () => {
  const { report, traced } = await attach(['--mode', 'walk']);
  steadyParent(report, traced);
  for (const p of tracedChildren(report)) {
    noAnomalies(p);
    const pools = flatPools(p.pools);
    const child = pools.find((x) => x.tag === 'pchild');
    assert.ok(child?.found, `process ${p.pid}: a found pchild among ${pools.map((x) => x.tag).join(' ')}`);
    assert.equal(child.pool, pchild.get(p.pid), 'the module\'s pchild');
    assert.ok(child.verdict && ['leak', 'growing'].includes(child.verdict.verdict), `pchild: ${child.verdict?.explanation}`);
    assert.ok(child.bytes > 240 * 2048, `pchild holds the warm-up's leak and more: ${child.bytes}`);
    // cleared at each connection's end: never growing (its peaks may fall between two walks)
    const trans = pools.find((x) => x.tag === 'transaction');
    assert.ok(trans?.verdict && ['bounded', 'steady'].includes(trans.verdict.verdict), `transaction: ${trans?.verdict?.explanation}`);
    // no probe: no call was seen, no pool was seen made (request pools live between two walks)
    assert.equal(p.poolClasses.reduce((s, c) => s + c.created, 0), 0, 'no creation seen');
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
  const { report, traced } = await attach(['--pool-allocs']);
  assert.equal(report.lost, 0);
  steadyParent(report, traced);
  for (const p of tracedChildren(report)) {
    noAnomalies(p);
    const child = flatPools(p.pools).find((x) => x.tag === 'pchild');
    assert.ok(child?.found, `process ${p.pid}: a found pchild`);
    assert.equal(child.pool, pchild.get(p.pid));
    assert.equal(child.verdict?.verdict, 'leak', child.verdict?.explanation);
    assert.ok(child.sites.some((s) => s.label.includes(`mod_pool_leak.c:${LEAK_LINE}`)), `feeders: ${child.sites.map((s) => s.label).join(', ')}`);
    const cls = p.poolClasses.find((c) => c.name === 'pchild');
    assert.equal(cls?.verdict.verdict, 'leak');
    assert.equal(cls?.created, 0);
    // cleanups allocating in dying pools (mod_log_config's, each request) make no pool of their own
    const truth = gdbPools(p.pid, types, 'gdb-apr-pools.py');
    assert.deepEqual(flatPools(p.pools).map((x) => x.pool).sort(), truth.map((x) => x.pool).sort(), `process ${p.pid}: live pools`);
  }
});

test('doctor --pid CHILD: says the pools alive before attach are found, as many as gdb walks, with the layout confirmed', () => {
  const pid = [...pchild.keys()][0]!;
  const truth = gdbPools(pid, types, 'gdb-apr-pools.py');
  const r = cliSync(['doctor', '--pid', String(pid)]);
  assert.match(r.stdout, new RegExp(`pools alive before attach \\(apr\\): ${truth.length} found in process ${pid} now`), r.stdout);
  assert.match(r.stdout, /Layout confirmed by the allocator's code: the parent link is at \+0/);
});

/** One `--interval` print: its end on the trace's clock (the "s traced" it shows, 0.1 s steps)
 *  and its rows. */
interface Print { tracedNs: number; rows: { pid: number; growth: number; total: number; site: string }[]; text: string }

const UNIT: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
const bytes = (n: string, u: string): number => Number(n) * UNIT[u]!;

/** The complete prints in the table output so far (a print is whole once it has its N rows). */
const pchildRows = (p: Print) => p.rows.filter((r) => r.site.includes('"pchild" (made before attach)'));

function prints(out: string): Print[] {
  const res: Print[] = [];
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const h = /^\[\d\d:\d\d:\d\d\] Top (\d+) growing sites in the last [\d.]+ s \(([\d.]+) s traced\):$/.exec(lines[i]!);
    if (!h) continue;
    const n = Math.max(Number(h[1]), 1);
    const body = lines.slice(i + 1, i + 1 + n);
    if (body.length < n || (i + 1 + n === lines.length)) break; // not all there yet
    const rows = [];
    for (const l of body) {
      const m = /^ {2}pid (\d+) {2}\+([\d.]+) (B|KiB|MiB|GiB) in [\d.]+ s {2}\(([+-][\d.]+) (B|KiB|MiB|GiB) since attach; .*\) {2}\S+ {2}(.*)$/.exec(l);
      if (m) rows.push({ pid: Number(m[1]), growth: bytes(m[2]!, m[3]!), total: Number(m[4]![0] === '-' ? -1 : 1) * bytes(m[4]!.slice(1), m[5]!), site: m[6]! });
      // before the first request no probed function has run (the pools were found, not called)
      else assert.match(l, /^ {2}\((nothing grew in the last [\d.]+ s|no call seen yet: .*)\)$/, `a row of the --interval view: ${l}`);
    }
    res.push({ tracedNs: Number(h[2]) * 1e9, rows, text: [lines[i], ...body].join('\n') });
  }
  return res;
}

test('--interval: each interval in which the module leaked shows the pre-existing pchild grown by what it leaked then, the next quiet interval shows nothing of it', async () => {
  const master = server.master.pid!;
  const trace = join(dir, 'interval.lstrace');
  // pool sizes read every 7 s only: the interval's own reading is what must show its growth
  const run = attachInBackground(['--pid', String(master), '--children', '--interval', '2s', '--pool-sample', '7s', '--top', '50', '-o', trace, '--no-report']);
  await run.started;
  try {
    const next = async (after: number): Promise<Print> => {
      await until(() => prints(run.stdout()).length > after, `--interval print ${after + 1}`);
      return prints(run.stdout())[after]!;
    };
    // The trace's t = 0 in CLOCK_MONOTONIC (process.hrtime's clock): its header is written first.
    const { meta } = await readTrace(trace, { event() {} }, { onWarning() {} });
    const start = BigInt(meta.startMonoNs!);
    const traceNow = () => Number(process.hrtime.bigint() - start);
    // Rounds, each on readiness: after a print P, a burst of /leak requests (each response names
    // the child that served it); Q is the first print that ended after the burst did (its end is
    // shown to 0.1 s: 0.05 s of margin). When Q is the print right after P, the burst fell in one
    // interval, and Q must show for every child served its pchild grown by what it leaked (2 KiB
    // a request, taken in 8 KiB blocks), and no other child's; on a loaded machine a burst may
    // straddle an interval's end instead, and the round is run again. The print R after Q, with
    // no request sent since the burst ended, shows no pchild growth at all.
    let checked = 0;
    let seen = 0;
    await next(seen++);
    for (let attempt = 0; checked < 3 && attempt < 12; attempt++) {
      const from = seen;
      const served = new Map<number, number>();
      for (const b of await keepaliveBursts(server.port, 2, Array.from({ length: 6 }, () => '/leak'))) {
        const pid = Number(/^pid (\d+)/.exec(b)?.[1]);
        served.set(pid, (served.get(pid) ?? 0) + 1);
      }
      const end = traceNow();
      let q = await next(seen++);
      while (q.tracedNs - 0.05e9 <= end) q = await next(seen++);
      if (seen - 1 === from) {
        checked++;
        const grown = new Map(pchildRows(q).map((x) => [x.pid, x]));
        assert.deepEqual([...grown.keys()].sort(), [...served.keys()].sort(), `children with a grown pchild in\n${q.text}\nafter requests to ${JSON.stringify([...served])}`);
        for (const [pid, n] of served) {
          const g = grown.get(pid)!.growth;
          assert.ok(g >= 8192 && g <= n * 2048 + 8192 && g % 8192 === 0, `pid ${pid}: +${g} B for ${n} leaks of 2 KiB`);
        }
      }
      const r = await next(seen++);
      assert.deepEqual(pchildRows(r), [], `nothing leaked in the interval after:\n${r.text}`);
    }
    assert.equal(checked, 3, 'three bursts each inside one interval');
  } finally {
    // an assertion failed: the test's own attach still ends cleanly (probes off)
    try { process.kill(run.pid, 'SIGTERM'); } catch { /* ended */ }
  }
  const done = await run.done;
  assert.equal(done.code, 0, done.stderr);
  // growth since attach is the sum of what each interval showed
  const all = prints(done.stdout);
  for (const pid of pchild.keys()) {
    const rows = all.flatMap((x) => pchildRows(x).filter((y) => y.pid === pid));
    if (rows.length === 0) continue;
    assert.equal(rows.at(-1)!.total, rows.reduce((a, y) => a + y.growth, 0), `pid ${pid}: since attach`);
  }
});

test('graceful restart while traced: the new children\'s pchild is seen made, with its tag, and grows with what the module leaks into it', async () => {
  const master = server.master.pid!;
  const before = childrenOf(master);
  const trace = join(dir, 'restart.lstrace');
  const run = attachInBackground(['--pid', String(master), '--children', '--format', 'json', '-o', trace]);
  await run.started;
  const t0 = process.hrtime.bigint();
  process.kill(master, 'SIGUSR1');
  await until(() => childrenOf(master).filter((x) => !before.includes(x)).length >= 2, 'two new children');
  const fresh = childrenOf(master).filter((x) => !before.includes(x));
  // leak in both new children: requests until each has served 20 /leak
  const leaks = new Map<number, number>();
  for (let i = 0; i < 200 && fresh.some((x) => (leaks.get(x) ?? 0) < 20); i++) {
    for (const b of await keepaliveBursts(server.port, 2, ['/leak', '/leak'])) {
      const m = /^pid (\d+) pchild (?:0x)?([0-9a-f]+)/.exec(b)!;
      const pid = Number(m[1]);
      leaks.set(pid, (leaks.get(pid) ?? 0) + 1);
      pchild.set(pid, `0x${m[2]}`);
    }
  }
  assert.ok(fresh.every((x) => (leaks.get(x) ?? 0) >= 20), `leaks per child: ${JSON.stringify([...leaks])}`);
  await quiescent([master, ...childrenOf(master)]);
  const traced = Number(process.hrtime.bigint() - t0);
  process.kill(run.pid, 'SIGTERM');
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const report = parseReport(r);
  // the master re-read its configuration (pconf cleared and filled again): traced all along
  const m = report.processes.find((x) => x.pid === master)!;
  assert.ok(m.endT - m.startT >= traced && m.verdict.verdict !== 'no-calls', `master: ${m.verdict.verdict}, traced ${(m.endT - m.startT) / 1e9} s`);
  const events: Event[] = [];
  await readTrace(trace, { event: (e) => events.push(e) });
  for (const pid of fresh) {
    const fork = events.find((e) => e.kind === 'fork' && e.pid === pid && e.parentPid === master);
    assert.ok(fork, `child ${pid} was forked in the trace`);
    const p = report.processes.find((x) => x.pid === pid)!;
    noAnomalies(p);
    const pools = flatPools(p.pools);
    const child = pools.filter((x) => x.tag === 'pchild');
    assert.equal(child.length, 1, `child ${pid}: pools ${pools.map((x) => x.tag).join(' ')}`);
    assert.equal(child[0]!.pool, pchild.get(pid), 'the pchild the module leaks into');
    assert.ok(!child[0]!.found && child[0]!.createdT >= fork.t, 'seen made, after the fork, not found by a walk');
    assert.notEqual(child[0]!.createSite, FOUND_SITE);
    assert.ok(child[0]!.bytes >= leaks.get(pid)! * 2048, `pchild holds what was leaked: ${child[0]!.bytes} B for ${leaks.get(pid)} leaks`);
    const cls = p.poolClasses.find((c) => c.name === 'pchild');
    assert.deepEqual([cls?.created, cls?.found], [1, 0]);
    // the module's own pools of the new generation's first moments: the transaction pool under pchild
    assert.ok(pools.some((x) => x.tag === 'transaction' && x.parent === child[0]!.pool), `child ${pid}: its transaction pool under pchild`);
  }
});
