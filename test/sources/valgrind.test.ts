import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import { valgrindSource } from '../../src/sources/valgrind.js';
import { readInputs } from '../../src/sources/open.js';
import { collect, type Collected } from './collect.js';

const PROGRAM = new URL('../programs/vg-pool.c', import.meta.url).pathname;

function runUnderValgrind(dir: string, name: string): string {
  const exe = join(dir, 'vg-pool');
  execFileSync('gcc', ['-g', '-O0', '-o', exe, PROGRAM]);
  const xml = join(dir, name);
  execFileSync('valgrind', ['--xml=yes', `--xml-file=${xml}`, '--leak-check=full', '--show-leak-kinds=all', exe], { stdio: 'ignore' });
  return xml;
}

/** Outstanding bytes and blocks per stack (fn:line leaf first, loss kind last). */
function byStack(c: Collected, events: Event[] = c.events): Map<string, { bytes: number; blocks: number }> {
  const out = new Map<string, { bytes: number; blocks: number }>();
  for (const e of events) {
    if (e.kind !== 'alloc') continue;
    const k = c.frames(e.pid, e.stack).map((f) => (f.line ? `${f.fn}:${f.line}` : f.fn)).join(' < ');
    const g = out.get(k) ?? { bytes: 0, blocks: 0 };
    g.bytes += e.size;
    g.blocks++;
    out.set(k, g);
  }
  return out;
}

test('valgrind: a pool-allocator program run under memcheck --xml=yes: bytes, blocks, sites and kinds', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-vg-'));
  try {
    const xml = runUnderValgrind(dir, 'vg.%p.xml'.replace('%p', 'one'));
    const c = await collect(valgrindSource, readFileSync(xml), 333);
    assert.equal(c.stats.badRecords, 0);
    const proc = c.events.find((e) => e.kind === 'process');
    assert.ok(proc && proc.kind === 'process' && proc.pid > 0 && proc.exe.endsWith('vg-pool'));
    const g = byStack(c);
    // 7 x malloc(48) in leak_plain.
    assert.deepEqual(g.get('malloc < leak_plain:45 < main:61 < [definitely lost]'), { bytes: 336, blocks: 7 });
    // 5 pools (64-byte headers) lost directly; their 15 allocations of 100 bytes indirectly.
    assert.deepEqual(g.get('malloc < ngx_create_pool:13 < leak_pools:36 < main:60 < [definitely lost]'), { bytes: 280, blocks: 5 });
    assert.deepEqual(g.get('malloc < ngx_palloc:21 < leak_pools:37 < main:60 < [indirectly lost]'), { bytes: 1500, blocks: 15 });
    assert.equal(g.size, 3, [...g.keys()].join(' | '));
    // Frames carry what suppressions need.
    const a = c.events.find((e) => e.kind === 'alloc')!;
    const f = c.frames(a.pid, a.kind === 'alloc' ? a.stack : 0)[1]!;
    assert.equal(f.file, 'vg-pool.c');
    assert.ok(f.pc > 0 && f.module.endsWith('vg-pool'));

    // Cut short (valgrind killed): complete records kept, a warning, never an error.
    const text = readFileSync(xml, 'utf8');
    const cut = text.slice(0, text.indexOf('</error>', text.indexOf('</error>') + 1) + 40);
    const c2 = await collect(valgrindSource, cut);
    assert.equal(byStack(c2).size, 2);
    assert.match(c2.stats.warnings.join('\n'), /ends early or is damaged/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('valgrind: several XML files (one per process) merge through readInputs', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-vg-'));
  try {
    const a = runUnderValgrind(dir, 'a.xml');
    const b = runUnderValgrind(dir, 'b.xml');
    const events: Event[] = [];
    const r = await readInputs([a, b], { event: (e) => events.push(e) });
    assert.deepEqual(r.stats.map((s) => s.source), ['valgrind', 'valgrind']);
    const pids = events.filter((e) => e.kind === 'process').map((e) => e.pid);
    assert.equal(pids.length, 2);
    assert.notEqual(pids[0], pids[1]);
    for (const pid of pids) {
      const bytes = events.filter((e) => e.kind === 'alloc' && e.pid === pid).reduce((s, e) => s + (e.kind === 'alloc' ? e.size : 0), 0);
      assert.equal(bytes, 336 + 280 + 1500);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('valgrind detect and garbage', async () => {
  assert.ok(valgrindSource.detect(Buffer.from('<?xml version="1.0"?>\n<valgrindoutput>\n<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>'), 'x') > 0.9);
  assert.equal(valgrindSource.detect(Buffer.from('POOL DEBUG: [1/2]'), 'x'), 0);
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-vg-'));
  try {
    writeFileSync(join(dir, 'bad.xml'), '<valgrindoutput><pid>12</pid><error><kind>Leak_DefinitelyLost</kind><xwhat><leakedbytes>zz</leakedbytes>');
    const c = await collect(valgrindSource, readFileSync(join(dir, 'bad.xml')));
    assert.equal(c.events.filter((e) => e.kind === 'alloc').length, 0);
    assert.ok(c.stats.warnings.length > 0);
    const neg = await collect(valgrindSource, '<valgrindoutput>\n<pid>5</pid>\n<error><kind>Leak_DefinitelyLost</kind><xwhat><text>x</text>'
      + '<leakedbytes>-3</leakedbytes><leakedblocks>1</leakedblocks></xwhat></error>\n</valgrindoutput>\n');
    assert.equal(neg.stats.badRecords, 1);
    assert.deepEqual(neg.stats.badSamples, ['line 3: loss record 1: bad byte or block count']);
    const none = await collect(valgrindSource, '<valgrindoutput>\n<pid>6</pid>\n<errorcounts>\n</errorcounts>\n</valgrindoutput>\n');
    assert.match(none.stats.warnings.join('\n'), /no leak records: run valgrind with --leak-check=full/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
