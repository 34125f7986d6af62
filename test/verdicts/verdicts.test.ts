// The verdict corpus (test/verdicts/README.md) against its labels: the targets of issue 13 as
// tests, and the five wrong verdicts that started it, each on the input that showed it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { corpus, scoreCases } from './corpus.js';
import { disagreementText, score } from './entities.js';
import type { Case, Scored } from './entities.js';
import { shortProgram } from './synthetic.js';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import { renderText, shortLabel } from '../../src/reports/text.js';
import { frame } from '../../src/model/events.js';
import { readFileSync } from 'node:fs';
import { BEGIN, README, renderLabels, withLabels } from './labels.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

let rows: Scored[] | undefined;
let cases: Case[] | undefined;
async function scored(): Promise<Scored[]> {
  cases ??= corpus();
  rows ??= await scoreCases(cases);
  return rows;
}

test('every entity of the corpus is labelled, and the verdicts meet the targets', async () => {
  const all = await scored();
  const s = score(all);
  assert.deepEqual(s.unlabelled.map((r) => `${r.case}: ${r.entity.id}`), [], 'every entity carries a label');
  // Every source the corpus promises is in it (the captures are committed, not skipped).
  const sources = new Set(all.map((r) => r.source));
  for (const want of ['apache2 run', 'apache2 attach', 'vd-server run', 'vd-server run (cut at a snapshot while running)', 'C program run', 'nginx debug log', 'nginx run', 'synthetic', 'fixture (APR pool-debug log)', 'fixture (nginx debug log)']) {
    assert.ok(sources.has(want), `cases from ${want}: ${[...sources].join(', ')}`);
  }
  assert.ok(s.total >= 300, `${s.total} labelled entities`);
  const why = (list: Scored[]) => list.map(disagreementText).join('\n');
  assert.equal(s.falseLeaks.length, 0, `labelled bounded/steady, called leak:\n${why(s.falseLeaks)}`);
  assert.equal(s.missedLeaks.length, 0, `labelled leak/growing, called neither:\n${why(s.missedLeaks)}`);
  assert.ok(s.agree >= 0.95 * s.total, `${s.agree} of ${s.total} agree:\n${why(s.disagreements)}`);
  // Every verdict says why in words.
  for (const r of all) assert.ok(r.entity.verdict.explanation.length > 20, `${r.case}: ${r.entity.id}: "${r.entity.verdict.explanation}"`);
});

test("1. httpd's start-up process is not a leak, and the report does not say it still runs", async () => {
  const r = await analyzeFiles([fixture('apr-pool-debug.httpd-1child.log.gz')]);
  const startup = r.processes.find((p) => p.pid === 3153)!;
  assert.notEqual(startup.verdict.verdict, 'leak', startup.verdict.explanation);
  for (const c of startup.poolClasses) assert.ok(c.verdict.verdict !== 'leak' && c.verdict.verdict !== 'growing', `${c.name}: ${c.verdict.explanation}`);
  for (const s of startup.sites) assert.notEqual(s.verdict?.verdict, 'leak', `${s.label}: ${s.verdict?.explanation}`);
  const text = renderText(r);
  assert.doesNotMatch(text, /still running/);
  // The log has no exit line for it: the report says so, and that its child went on.
  assert.match(text, /=== Process 3153[^\n]*\nVerdict: STEADY — no exit in the trace; silent after event [\d,]+ while its child 3156 carried on/);
  // Under `run` the same process exits: what it held is not freed at exit, with its trend.
  const run = (await scored()).filter((x) => x.case === 'apache-run-leak' && x.entity.kind === 'process' && x.label?.why.startsWith("httpd's start-up"));
  assert.equal(run.length, 1);
  assert.equal(run[0]!.entity.verdict.verdict, 'unfreed', run[0]!.entity.verdict.explanation);
  assert.equal(run[0]!.entity.verdict.trend, 'steady');
});

test('2. a connection pool that grew during one long stream is bounded, and says how it grew during the connection', async () => {
  const rows = (await scored()).filter((x) => x.case === 'syn-stream-connection' && x.entity.kind === 'class' && x.entity.cls!.name === 'transaction');
  assert.equal(rows.length, 1);
  const v = rows[0]!.entity.verdict;
  assert.equal(v.verdict, 'bounded', v.explanation);
  assert.match(v.explanation, /^Grows during a connection \(by up to [\d.]+ KiB, ≈ [\d.]+ (B|KiB) per s, ≈ [\d.]+ (B|KiB) per change\) and is released when it ends \(released at least \d+ times\)\.$/);
  // 200 chunks of 600 B, one every 20 ms: ≈ 30 KB/s, ≈ 600 B a change (a request pool between).
  assert.ok(v.perUse && v.perUse.rate! * 1e9 > 20_000 && v.perUse.rate! * 1e9 < 40_000, JSON.stringify(v.perUse));
  // (Its series merges neighbouring changes, so it sees fewer uses than the 121 connections.)
  assert.ok(v.perUse!.peak >= 0.95 * 200 * 600 && v.perUse!.uses >= 20 && v.perUse!.uses <= 121, JSON.stringify(v.perUse));
  // The real ones: apache2's transaction pool in the fixture and in the captures.
  const real = (await scored()).filter((x) => x.entity.kind === 'class' && x.entity.cls!.name === 'transaction' && x.label?.label === 'bounded');
  assert.ok(real.length >= 2, real.map((x) => x.case).join());
  for (const x of real) assert.match(x.entity.verdict.explanation, /Grows during a connection/, `${x.case}: ${x.entity.verdict.explanation}`);
});

test('3. late growth of a long-lived pool, a site of two stacks, is growing, never steady', async () => {
  const rows = (await scored()).filter((x) => x.case === 'syn-late-cycle-pool' && x.label?.label === 'growing');
  // (The pool itself has too few allocations for a series of its own: its class and site judge it.)
  assert.deepEqual(rows.map((x) => x.entity.kind).sort(), ['class', 'process', 'site']);
  for (const x of rows) {
    assert.equal(x.entity.verdict.verdict, 'growing', `${x.entity.id}: ${x.entity.verdict.explanation}`);
    assert.match(x.entity.verdict.explanation, /evidence is thin/);
  }
  const site = rows.find((x) => x.entity.kind === 'site')!.entity.site!;
  assert.equal(site.count, 5, 'three start-up blocks and two late ones in one site');
});

test('4. a short program that exits holding memory gets "not freed at exit" whatever the clock did', async () => {
  // Where the recorder's 4 ms tick falls inside the program's life is chance: ten phases.
  const seen = new Set<string>();
  for (let k = 0; k < 10; k++) {
    const r = shortProgram(k * 0.4e6);
    const p = r.processes[0]!;
    const keep = p.sites.find((s) => s.label.startsWith('keep'))!;
    assert.equal(keep.bytes, 64_000);
    for (const v of [p.verdict, keep.verdict!]) {
      assert.equal(v.verdict, 'unfreed', v.explanation);
      assert.ok(v.trend, 'the growth verdict while it ran is kept');
      assert.match(v.explanation, /^Not freed at exit: .* still held when the process exited\. While it ran \((leak|growing|bounded|steady)\): /);
      seen.add(`${v.verdict}/${v.trend}`);
    }
  }
  assert.equal(seen.size, 1, [...seen].join(', '));
});

test('5. the text table keeps a site\'s function whole and shortens its path to basename:line', async () => {
  // A real capture: its sites' paths are longer than the table's room.
  const r = await analyzeFiles([fileURLToPath(new URL('./captures/srv-slow-leak.lstrace.zst', import.meta.url))]);
  const leak = r.processes.flatMap((p) => p.sites).find((x) => x.label.startsWith('vd_leak'))!;
  assert.ok(leak.label.length > 60, leak.label);
  const row = renderText(r).split('\n').find((l) => /^ *[\d.]+ (B|KiB|MiB) +[\d,]+ /.test(l) && / vd_leak/.test(l))!;
  assert.match(row, / vd_leak \(vd-server\.c:\d+\)$/, row);
  assert.ok(row.length <= 100);

  const site = {
    label: 'worker_thread (/build/apache2-2.4.62/src/server/mpm/worker/worker.c:19)',
    stack: [frame({ fn: 'worker_thread', file: '/build/apache2-2.4.62/src/server/mpm/worker/worker.c', line: 19 })],
  };
  assert.equal(shortLabel(site, 80), site.label);
  assert.equal(shortLabel(site, 40), 'worker_thread (worker.c:19)');
  assert.equal(shortLabel(site, 20), 'worker_thread');
  assert.equal(shortLabel(site, 8), 'worker_…');
  assert.equal(shortLabel({ label: 'tables/apr_tables.c:66', stack: [frame({ file: 'tables/apr_tables.c', line: 66 })] }, 16), 'apr_tables.c:66');
  assert.equal(shortLabel({ label: 'GET /a/very/long/request/path', stack: [] }, 12), 'GET /a/very…');
});

test('pools alive before the attach (found by the walk) are judged on what the trace saw: a pchild that leaked before and goes on leaking is a leak', async () => {
  const rows = (await scored()).filter((x) => x.case === 'apache-attach-warm');
  const proc = rows.find((x) => x.entity.kind === 'process' && x.label?.label === 'leak')!.entity.proc;
  const cls = (name: string) => proc.poolClasses.find((c) => c.name === name)!;
  // pchild, the cache and the connection pool were made before the attach: found, none created.
  for (const name of ['pchild', 'vd-cache', 'transaction']) {
    assert.deepEqual([cls(name).created, cls(name).found, cls(name).destroyed], [0, 1, 0], name);
  }
  // Request pools are made while traced: created, none found.
  assert.ok(cls('request').created >= 200 && cls('request').found === 0, JSON.stringify(cls('request')));
  const flat = (ps: typeof proc.pools): typeof proc.pools => ps.flatMap((p) => [p, ...flat(p.children)]);
  const pchild = flat(proc.pools).find((p) => p.tag === 'pchild')!;
  assert.equal(pchild.found, true);
  // It held the warm-up's 120 leaks of 2 KiB when found, and 80 more while traced.
  assert.ok(pchild.bytes >= (120 + 80) * 2048, String(pchild.bytes));
  for (const v of [pchild.verdict!, cls('pchild').verdict, proc.verdict]) assert.ok(['leak', 'growing'].includes(v.verdict), v.explanation);
  // What it held before the attach is the baseline, not growth: the rate is the traced 80 leaks'.
  assert.match(cls('pchild').verdict.explanation, /^Grew steadily from [\d.]+ KiB/);
  assert.ok(cls('pchild').verdict.first >= 120 * 2048, `the series starts at the found size: ${cls('pchild').verdict.first}`);
  assert.equal(cls('vd-cache').verdict.verdict, 'steady', cls('vd-cache').verdict.explanation);
  assert.equal(cls('transaction').verdict.verdict, 'bounded', cls('transaction').verdict.explanation);
  assert.match(cls('transaction').verdict.explanation, /Grows during a connection/);
});

test('the README lists every case with what it is and its label rules, as the cases hold them', () => {
  const doc = readFileSync(README, 'utf8');
  assert.equal(doc.split(BEGIN).length, 2, 'one generated label list');
  const all = corpus();
  assert.equal(doc, withLabels(doc, renderLabels(all)), 'test/verdicts/README.md differs from the cases: run node --import tsx test/verdicts/labels.ts --write');
  for (const c of all) assert.ok(c.what.length > 20, `${c.name}: what it is`);
});
