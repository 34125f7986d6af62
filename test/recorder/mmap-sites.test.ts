// `leakscope run` on a C program that leaks with mmap: outstanding anonymous mappings are leak
// sites (via 'mmap') at the mapping function, with the exact bytes kept after partial unmaps.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { renderText } from '../../src/reports/text.js';
import { buildRecorder, compile, leakscope, sitesWith, workDir } from './harness.js';

const PAGE = 4096;

describe('leakscope run: anonymous mappings as leak sites', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('mmap-sites');
  });

  it('reports the mapping function via mmap with the bytes still mapped, in JSON and text', () => {
    const exe = compile(dir, 'rec-mmap');
    const trace = join(dir, 'mmap.lstrace');
    const report = join(dir, 'mmap.json');
    const run = leakscope(['run', '--format', 'json', '-o', trace, '--report', report, '--', exe]);
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(readFileSync(report, 'utf8')) as AnalysisResult;
    // The report written during the run and a later analysis of the trace agree.
    const again = leakscope(['analyze', '--format', 'json', trace]);
    assert.equal(again.status, 0, again.stderr);
    for (const r of [result, JSON.parse(again.stdout) as AnalysisResult]) {
      assert.equal(r.processes.length, 1);
      const p = r.processes[0]!;
      const grow = sitesWith(p, 'grow_mapping');
      assert.equal(grow.length, 1, JSON.stringify(p.sites.map((s) => [s.label, s.via])));
      const s = grow[0]!;
      assert.equal(s.via, 'mmap');
      assert.equal(s.stack[0]!.fn, 'grow_mapping');
      assert.ok(s.stack.some((f) => f.fn === 'main'), 'callers unwound');
      assert.equal(s.bytes, 12 * 2 * PAGE);
      assert.equal(s.count, 12);
      assert.equal(s.allocatedCount, 24);
      assert.equal(s.allocatedBytes, 24 * 3 * PAGE);
      assert.ok(s.oldestT < s.youngestT);
      // The program exits holding them: not freed at exit, a fact; while it ran, a steady climb.
      assert.equal(s.verdict?.verdict, 'unfreed', s.verdict?.explanation);
      assert.equal(s.verdict?.trend, 'leak', s.verdict?.explanation);
      assert.equal(s.verdict?.atExit?.bytes, 12 * 2 * PAGE);
      assert.match(p.verdict.explanation, /grow_mapping/);
      const keep = sitesWith(p, 'keep_mapping');
      assert.equal(keep.length, 1);
      assert.equal(keep[0]!.via, 'mmap');
      assert.equal(keep[0]!.bytes, 2 * PAGE);
      assert.equal(keep[0]!.count, 2, 'head and tail around the hole');
      // The heap block is a heap site; the file mapping is no allocation (the recorder records
      // anonymous mappings only).
      const heap = p.sites.filter((x) => x.bytes === 777);
      assert.equal(heap.length, 1);
      assert.equal(heap[0]!.via, undefined);
      assert.equal(p.sites.filter((x) => x.via === 'mmap').length, 2);
      assert.equal(p.outstanding.mmapBytes, (24 + 2) * PAGE);
    }
    // The text report names the site and how it was allocated; on a narrow line (100 columns
    // when piped) the label's middle gives way, not `via mmap`.
    assert.match(renderText(result, { width: 300 }), /grow_mapping \([^\n]*rec-mmap\.c:\d+\) via mmap/);
    const text = leakscope(['analyze', trace]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /unfreed +grow_mapping[^\n]*rec-mmap\.c:\d+\) via mmap\n/);
    assert.ok(text.stdout.split('\n').every((l) => [...l].length <= 100), 'lines fit 100 columns');
    // --min-age older than the run: no mapping is old enough.
    const old = leakscope(['analyze', '--format', 'json', '--min-age', '1h', trace]);
    assert.equal(old.status, 0, old.stderr);
    assert.equal((JSON.parse(old.stdout) as AnalysisResult).processes[0]!.sites.length, 0);
  });
});
