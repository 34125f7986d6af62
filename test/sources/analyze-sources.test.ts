// End to end: `leakscope analyze --format json` on each source's real inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnalysisResult, ProcessReport, Series } from '../../src/analyses/result.js';
import { fixture } from './collect.js';
import { cliSync } from '../support/cli.js';

const root = new URL('../..', import.meta.url).pathname;

function analyze(...args: string[]): AnalysisResult {
  const r = cliSync(['analyze', '--format', 'json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as AnalysisResult;
}

function proc(r: AnalysisResult, pid: number): ProcessReport {
  const p = r.processes.find((x) => x.pid === pid);
  assert.ok(p, `no process ${pid} in ${r.processes.map((x) => x.pid).join(', ')}`);
  return p;
}

function chartReady(s: Series, what: string): void {
  assert.equal(s.x.length, s.y.length, what);
  assert.ok(s.x.length >= 2, `${what}: ${s.x.length} points`);
  for (let i = 1; i < s.x.length; i++) assert.ok(s.x[i]! >= s.x[i - 1]!, `${what}: x goes back at ${i}`);
  for (const y of s.y) assert.ok(Number.isFinite(y) && y >= 0, `${what}: y=${y}`);
}

test('analyze APR pool-debug log: pchild leaks from mod_leaky.c:25, transaction is bounded, the parent is steady', { timeout: 60000 }, () => {
  const r = analyze(fixture('apr-pool-debug.httpd-1child.log.gz'));
  assert.equal(r.source, 'apr-log');
  assert.equal(r.clock, 'seq');
  assert.deepEqual(r.processes.map((p) => p.pid).sort(), [3153, 3156, 3160]);
  const child = proc(r, 3160);
  assert.equal(child.ppid, 3156);
  const pchild = child.poolClasses.find((c) => c.name === 'pchild');
  assert.ok(pchild, child.poolClasses.map((c) => c.name).join(', '));
  assert.equal(pchild.verdict.verdict, 'leak', pchild.verdict.explanation);
  assert.equal(pchild.sites[0]!.label, 'mod_leaky.c:25');
  assert.ok(pchild.sites[0]!.bytes >= 40 * 2048);
  const tx = child.poolClasses.find((c) => c.name === 'transaction');
  assert.ok(tx);
  assert.equal(tx.verdict.verdict, 'bounded', tx.verdict.explanation);
  assert.equal(proc(r, 3156).verdict.verdict, 'steady', proc(r, 3156).verdict.explanation);
  for (const p of r.processes) {
    chartReady(p.series.total, `${p.pid} total`);
    chartReady(p.series.pools, `${p.pid} pools`);
  }
  chartReady(pchild.series, 'pchild class');
});

test('analyze nginx debug log: 30 leaked 4096-byte blocks on GET /scratch, nothing on /ok', { timeout: 60000 }, () => {
  const r = analyze(fixture('nginx-debug.1worker.log.gz'));
  assert.equal(r.source, 'nginx-log');
  const w = proc(r, 3643);
  assert.equal(w.ppid, 3641);
  const scratch = w.sites.find((s) => s.label === 'GET /scratch');
  assert.ok(scratch, w.sites.map((s) => s.label).join(', '));
  assert.equal(scratch.count, 30);
  assert.equal(scratch.bytes, 30 * 4096);
  assert.ok(!w.sites.some((s) => s.label.includes('/ok')));
  chartReady(w.series.total, 'worker total');
});

test('analyze Valgrind XML: pool-aware sites name the pool API and the caller above it', { timeout: 60000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-vge2e-'));
  try {
    const exe = join(dir, 'vg-pool');
    execFileSync('gcc', ['-g', '-O0', '-o', exe, join(root, 'test/programs/vg-pool.c')]);
    const xml = join(dir, 'vg.xml');
    execFileSync('valgrind', ['--xml=yes', `--xml-file=${xml}`, '--leak-check=full', '--show-leak-kinds=all', exe], { stdio: 'ignore' });
    const r = analyze(xml);
    assert.equal(r.source, 'valgrind');
    const sites = r.processes[0]!.sites.map((s) => `${s.label} via ${s.via ?? '-'}: ${s.count} ${s.bytes} ${s.stack.at(-1)!.fn}`).sort();
    assert.deepEqual(sites, [
      'leak_plain (vg-pool.c:45) via -: 7 336 [definitely lost]',
      'leak_pools (vg-pool.c:36) via ngx_create_pool: 5 280 [definitely lost]',
      'leak_pools (vg-pool.c:37) via ngx_palloc: 15 1500 [indirectly lost]',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analyze heaptrack: the leak sites of heaptrack_print', { timeout: 60000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-hte2e-'));
  try {
    const exe = join(dir, 'ht-leak');
    execFileSync('gcc', ['-g', '-O2', '-o', exe, join(root, 'test/programs/ht-leak.c')]);
    execFileSync('heaptrack', [exe, '5000'], { cwd: dir, stdio: 'ignore' });
    const file = readdirSync(dir).find((f) => f.startsWith('heaptrack.ht-leak.'))!;
    const r = analyze(join(dir, file));
    assert.equal(r.source, 'heaptrack');
    assert.equal(r.clock, 'ns');
    const p = r.processes[0]!;
    const sites = new Map(p.sites.map((s) => [s.label, s]));
    const small = [...sites.values()].find((s) => s.label.startsWith('leak_small'));
    const big = [...sites.values()].find((s) => s.label.startsWith('big_inline'));
    assert.ok(small && big, [...sites.keys()].join(', '));
    assert.equal(small.bytes, 3200);
    assert.equal(small.count, 50);
    assert.equal(big.bytes, 300000);
    assert.equal(big.count, 3);
    assert.ok(p.series.rss && p.series.rss.x.length > 0, 'RSS samples');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
