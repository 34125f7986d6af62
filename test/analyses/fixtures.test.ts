// The verdicts on real logs (test/fixtures, described in /work/shared/fixtures/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import type { ProcessReport } from '../../src/analyses/result.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const cls = (p: ProcessReport, name: string) => {
  const c = p.poolClasses.find((x) => x.name === name);
  assert.ok(c, `pool class ${name} of ${p.pid}: ${p.poolClasses.map((x) => x.name).join(', ')}`);
  return c;
};

test('httpd with APR pool debugging: pchild leaks, the transaction pool is bounded, request pools and the parent are steady', async () => {
  const r = await analyzeFiles([fixture('apr-pool-debug.httpd-1child.log.gz')]);
  assert.equal(r.clock, 'seq');
  assert.equal(r.clockUnit, 'events');
  const child = r.processes.find((p) => p.pid === 3160)!;
  const parent = r.processes.find((p) => p.pid === 3156)!;

  const pchild = cls(child, 'pchild');
  assert.equal(pchild.verdict.verdict, 'leak', pchild.verdict.explanation);
  assert.ok(pchild.verdict.pValue < 0.001 && pchild.verdict.tau > 0.9);
  assert.ok(pchild.peakBytes > 80 * 1024, String(pchild.peakBytes));
  assert.equal(pchild.sites[0]!.label, 'mod_leaky.c:25');
  assert.ok(pchild.verdict.lastGrowthAt > 0.6 && pchild.verdict.lastGrowthAt < 0.9, String(pchild.verdict.lastGrowthAt));

  const tx = cls(child, 'transaction');
  assert.equal(tx.verdict.verdict, 'bounded', tx.verdict.explanation);
  assert.ok(tx.verdict.last < tx.verdict.peak / 2);

  const req = cls(child, 'request');
  assert.equal(req.verdict.verdict, 'steady', req.verdict.explanation);
  assert.ok(req.created > 100 && req.live === 0);

  assert.equal(child.verdict.verdict, 'leak', child.verdict.explanation);
  assert.equal(parent.verdict.verdict, 'steady', parent.verdict.explanation);
  for (const c of parent.poolClasses) assert.notEqual(c.verdict.verdict, 'leak', `${c.name}: ${c.verdict.explanation}`);
});

test('nginx debug log: the /scratch site leaks 30 pool blocks of 4 KiB; nothing else leaks', async () => {
  const r = await analyzeFiles([fixture('nginx-debug.1worker.log.gz')]);
  assert.equal(r.clock, 'ns');
  const worker = r.processes.find((p) => p.sites.some((s) => s.label === 'GET /scratch'))!;
  const site = worker.sites.find((s) => s.label === 'GET /scratch')!;
  assert.equal(site.count, 30);
  assert.equal(site.bytes, 30 * 4096);
  assert.equal(site.verdict?.verdict, 'leak', site.verdict?.explanation);
  assert.equal(worker.verdict.verdict, 'leak');
  for (const s of worker.sites) if (s !== site) assert.notEqual(s.verdict?.verdict, 'leak', `${s.label}: ${s.verdict?.explanation}`);
  // --min-age keeps only what is older than the given age at the end.
  const young = await analyzeFiles([fixture('nginx-debug.1worker.log.gz')], { minAge: '1h' });
  assert.equal(young.processes.reduce((n, p) => n + p.sites.length, 0), 0);
  await assert.rejects(analyzeFiles([fixture('nginx-debug.1worker.log.gz')], { minAge: '500' }), /unit/);
  await assert.rejects(analyzeFiles([fixture('apr-pool-debug.httpd-1child.log.gz')], { minAge: '5m' }), /number of events/);
});
