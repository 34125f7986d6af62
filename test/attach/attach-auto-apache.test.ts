// `leakscope attach`'s default mode, auto, on Debian's apache2 (prefork, 2 children) leaking as in
// attach-preexisting-apache.test.ts: our module (test/programs/mod_pool_leak.c) puts 2 KiB into
// the child's pchild on every /leak. With a budget its traffic exceeds, the probes give way to
// walks within the decision window, and the leaking pchild is still found by its tag, growing,
// among exactly the live pools gdb reads from the children; under the default budget the same
// traffic keeps the probes (every request pool seen made and destroyed, the window's events
// written); --budget 0 and --mode events never switch; tracing that ends within the window
// writes every event.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { attachInBackground, flatPools, parseReport, tempDir, until, type CliRun } from './helpers.js';
import { readTrace } from '../../src/trace/reader.js';
import type { Event } from '../../src/model/events.js';
import { childrenOf, keepaliveBursts, quiescent, startLeakingApache, type Server } from './servers.js';
import { aprTypes, gdbPools } from './gdb-pools.js';
import { FOUND_SITE } from '../../src/analyses/pools.js';
import type { AnalysisResult, ProcessReport } from '../../src/analyses/result.js';
import { DECISION_WINDOW_MS } from '../../src/attach/auto-mode.js';
import { DEFAULT_MAX_PROBE_RATE } from '../../src/attach/governor.js';

let dir: string;
let server: Server;
let types: string;
/** pchild's address per child pid, as the module reports it (`note` keeps it). */
let pchild: Map<number, string>;
let note: (bodies: string[]) => void;

/** Light traffic for `ms`: 3 keepalive requests on each of 2 connections, then 40 ms of rest.
 *  About 1,000 probe hits/s (8 a request; measured: see the default-budget test), far over a
 *  budget of 50/s and a tenth of the default one. */
async function traffic(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    note(await keepaliveBursts(server.port, 2, ['/leak', '/grow', '/leak']));
    await new Promise((r) => setTimeout(r, 40));
  }
}

const master = () => server.master.pid!;

/** Attach with `extra`, `ms` of traffic (or none), then stop once the server is quiet. */
async function traced(extra: string[], ms: number, during?: (run: ReturnType<typeof attachInBackground>) => Promise<void>): Promise<CliRun> {
  const run = attachInBackground(['--pid', String(master()), '--children', '--pool-sample', '500ms', '--format', 'json', ...extra]);
  await run.started;
  await Promise.all([traffic(ms), during?.(run)]);
  await quiescent([master(), ...childrenOf(master())]);
  try { process.kill(run.pid, 'SIGTERM'); } catch { /* ended by its --duration */ }
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function children(report: AnalysisResult): ProcessReport[] {
  const kids = report.processes.filter((p) => p.ppid === master());
  assert.deepEqual(kids.map((p) => p.pid).sort(), [...pchild.keys()].sort(), 'every child that served requests is traced, and no other');
  return kids;
}

/** The auto mode lines attach printed (stderr). */
const autoLines = (r: CliRun) => r.stderr.split('\n').filter((l) => /^leakscope: (warning: )?auto mode: /.test(l));
const rateOf = (line: string) => Number(/auto mode: (\d+) probe hits\/s/.exec(line)?.[1]);

/** Request pools seen made and destroyed, over the children. */
function requestPools(report: AnalysisResult): { created: number; destroyed: number } {
  let created = 0;
  let destroyed = 0;
  for (const c of children(report)) {
    const req = c.poolClasses.find((k) => k.name === 'request');
    created += req?.created ?? 0;
    destroyed += req?.destroyed ?? 0;
  }
  return { created, destroyed };
}

async function events(path: string): Promise<Event[]> {
  const out: Event[] = [];
  await readTrace(path, { event: (e) => out.push(e) });
  return out;
}

before(async () => {
  dir = tempDir('att-auto-apache');
  types = aprTypes(dir);
  ({ server, pchild, note } = await startLeakingApache(dir));
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('default mode, default budget, the same traffic: the probes stay (one line with the rate), the window\'s events are written, every request pool seen made and destroyed', async () => {
  const trace = join(dir, 'events.lstrace');
  const r = await traced(['-o', trace], 8000);
  const lines = autoLines(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, new RegExp(`^leakscope: auto mode: \\d+ probe hits/s over the last 5\\.\\d s, budget ${DEFAULT_MAX_PROBE_RATE}/s \\(traps ≥ [\\d.]+ ms/s at [\\d.]+ µs a hit at best, as measured at start.*\\): within the budget, the probes stay \\(events mode\\)$`));
  // this traffic is meant to stay well under the budget (2x margin): it made 716 probe hits/s
  // when this test was written (load ~1), a fourteenth of the default budget
  const rate = rateOf(lines[0]!);
  assert.ok(rate <= DEFAULT_MAX_PROBE_RATE / 2, `the test's traffic made ${rate} probe hits/s: lighten it`);
  console.log(`# default budget: the traffic made ${rate} probe hits/s over the window\n# ${lines[0]}`);
  const report = parseReport(r);
  assert.equal(report.lost, 0);
  assert.ok(report.warnings.some((w) => /within the budget, the probes stay/.test(w)), report.warnings.join(' | '));
  const req = requestPools(report);
  assert.ok(req.created >= 100 && req.destroyed === req.created, JSON.stringify(req));
  for (const p of children(report)) {
    const child = flatPools(p.pools).find((x) => x.tag === 'pchild');
    assert.ok(child?.found && child.createSite === FOUND_SITE, `process ${p.pid}: the pchild found at attach`);
    assert.ok(child.verdict && ['leak', 'growing'].includes(child.verdict.verdict), `pchild: ${child.verdict?.explanation}`);
  }
  // the pools made while auto mode was deciding reach the trace, with their creation stacks
  const ev = await events(trace);
  const early = ev.filter((e): e is Extract<Event, { kind: 'pool-create' }> => e.kind === 'pool-create' && e.t < DECISION_WINDOW_MS * 1e6);
  const stacked = early.filter((e) => e.stack > 0).length;
  assert.ok(early.length >= 20 && stacked >= early.length * 0.9, `pools made in the window: ${early.length}, ${stacked} with a stack`);
});

test('default mode, --budget 50 under light traffic: one line says walk mode and why; the leaking pchild is found by its tag and grows, among exactly the pools the probes saw alive; a marker and --interval go on', async () => {
  const trace = join(dir, 'walk.lstrace');
  // a marker at once, inside the decision window: it reaches the trace whatever is decided
  const r = await traced(['--budget', '50', '--interval', '1s', '-o', trace], 8000, async (run) => {
    process.kill(run.pid, 'SIGUSR1');
    await until(() => run.stderr().includes('marker "SIGUSR1 #1"'), 'the marker');
  });
  const lines = autoLines(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^leakscope: warning: auto mode: \d+ probe hits\/s over the last \d\.\d s, budget 50\/s \(traps ≥ [\d.]+ ms\/s at [\d.]+ µs a hit at best, as measured at start.*\): over the budget, switched to walk mode .*creation stacks.*`--mode events` keeps the probes$/);
  assert.ok(rateOf(lines[0]!) > 50, lines[0]);
  console.log(`# ${lines[0]}`);
  // the --interval view starts once the mode is chosen
  const firstTable = r.stderr.search(/Top \d+ growing sites in the last/);
  assert.ok(firstTable > r.stderr.indexOf('switched to walk mode'), r.stderr);
  const report = parseReport(r);
  assert.ok(report.warnings.some((w) => /switched to walk mode/.test(w)), `the report says why: ${report.warnings.join(' | ')}`);
  for (const p of children(report)) {
    const pools = flatPools(p.pools);
    const child = pools.find((x) => x.tag === 'pchild');
    assert.ok(child?.found, `process ${p.pid}: a found pchild among ${pools.map((x) => x.tag).join(' ')}`);
    assert.equal(child.pool, pchild.get(p.pid), 'the module\'s pchild');
    assert.ok(child.verdict && ['leak', 'growing'].includes(child.verdict.verdict), `pchild: ${child.verdict?.explanation}`);
    // no pool made under the probes reaches the report: what is alive is what gdb reads alive
    // (the server is quiet since the trace ended)
    assert.equal(p.poolClasses.reduce((s, c) => s + c.created, 0), 0, 'no creation seen');
    assert.deepEqual(pools.map((x) => x.pool).sort(), gdbPools(p.pid, types, 'gdb-apr-pools.py').map((x) => x.pool).sort(), `process ${p.pid}: live pools`);
  }
  const ev = await events(trace);
  assert.deepEqual(ev.filter((e) => e.kind === 'marker').map((e) => (e as { label: string }).label), ['SIGUSR1 #1']);
  assert.equal(ev.filter((e) => e.kind === 'pool-create' || e.kind === 'frame').length, 0, 'nothing of the probes\' pools or stacks');
  // the processes' lives in the window are kept: the master is traced from the start
  const m = report.processes.find((p) => p.pid === master())!;
  assert.ok(m.startT < DECISION_WINDOW_MS * 1e6, `master traced from ${m.startT / 1e9} s`);
});

test('--budget 0 and --mode events never switch, under traffic far over a budget of 50', async () => {
  for (const extra of [['--budget', '0'], ['--mode', 'events', '--budget', '50']]) {
    const r = await traced(extra, DECISION_WINDOW_MS + 2000);
    assert.deepEqual(autoLines(r), [], `${extra.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /walk mode/);
    const req = requestPools(parseReport(r));
    assert.ok(req.created >= 100 && req.destroyed === req.created, `${extra.join(' ')}: ${JSON.stringify(req)}`);
  }
});

test('tracing that ends within the decision window (--duration, or a signal) writes every event held', async () => {
  // 60 requests, sent at once: done well within the 3 s of tracing
  const send = async () => { for (let i = 0; i < 10; i++) note(await keepaliveBursts(server.port, 2, ['/leak', '/grow', '/leak'])); };
  const trace = join(dir, 'short.lstrace');
  const run = attachInBackground(['--pid', String(master()), '--children', '--format', 'json', '--duration', '3s', '-o', trace]);
  await run.started;
  await send();
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr);
  const lines = autoLines(r);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /within the budget \(tracing ended within the first 5 s\), events mode$/);
  const req = requestPools(parseReport(r));
  assert.ok(req.created >= 60 && req.destroyed === req.created, JSON.stringify(req));
  assert.ok((await events(trace)).filter((e) => e.kind === 'pool-create').length >= 60);

  // a signal before the window ends: kept too, and said so (a budget of 100/s, which the 60
  // requests' ~500 hits likely exceed over the second or two traced, but not by enough to be
  // decided before the window ends: over twice the budget for the whole window, 1,000 hits)
  const sig = attachInBackground(['--pid', String(master()), '--children', '--format', 'json', '--budget', '100']);
  await sig.started;
  await send();
  await quiescent([master(), ...childrenOf(master())]);
  process.kill(sig.pid, 'SIGTERM');
  const s = await sig.done;
  assert.equal(s.code, 0, s.stderr);
  assert.match(autoLines(s)[0] ?? '', /tracing ended within the first 5 s/, s.stderr);
  const req2 = requestPools(parseReport(s));
  assert.ok(req2.created >= 60 && req2.destroyed === req2.created, JSON.stringify(req2));
});
