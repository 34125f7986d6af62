// --sample BYTES: allocations recorded with probability 1-exp(-size/BYTES), frees only of
// sampled blocks, sampleBytes in the metadata, estimates scaled back by the analysis.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildRecorder, compile, leakscope, runJson, sitesWith, traceEvents, workDir } from './harness.js';

describe('recorder sampling', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('sample');
  });

  it('samples by size, records only sampled frees, and estimates the leak', async () => {
    const exe = compile(dir, 'rec-loop');
    const trace = join(dir, 'sampled.lstrace');
    // 2000 leaks of 4096 B (p = 1 - e^-0.5 = 0.39 each) among 20000 small churn blocks (p ~ 0.008).
    const { run, result } = runJson(trace, [exe, '2000', '4096'], ['--sample', '8192']);
    assert.equal(run.status, 0, run.stderr);
    const { events, meta } = await traceEvents(trace);
    assert.equal(meta.sampleBytes, 8192);
    const allocs = events.filter((e) => e.kind === 'alloc') as { addr: number; size: number }[];
    const frees = events.filter((e) => e.kind === 'free') as { addr: number }[];
    const big = allocs.filter((a) => a.size === 4096).length;
    assert.ok(big > 2000 * 0.3 && big < 2000 * 0.48, `sampled ${big} of 2000 large blocks`);
    const small = allocs.filter((a) => a.size < 128).length;
    assert.ok(small < 20000 * 0.03, `sampled ${small} of 20000 small blocks`);
    // Every recorded free is of a recorded block.
    const seen = new Set<number>();
    const live = new Set<number>();
    for (const e of events) {
      if (e.kind === 'alloc') { seen.add(e.addr); live.add(e.addr); }
      if (e.kind === 'free') {
        assert.ok(live.has(e.addr), `free of unsampled 0x${e.addr.toString(16)}`);
        live.delete(e.addr);
      }
    }
    assert.ok(frees.length > 0 && frees.length < 20000 * 0.03);
    assert.equal(result.estimated, true);
    const est = sitesWith(result.processes[0]!, 'leak_here').reduce((a, s) => a + s.bytes, 0);
    const truth = 2000 * 4096;
    assert.ok(Math.abs(est - truth) / truth < 0.2, `estimated ${est} for ${truth}`);
  });

  it('the text summary printed at the end says the figures are estimates, only when sampled', () => {
    const exe = compile(dir, 'rec-loop');
    const exact = leakscope(['run', '-o', join(dir, 'exact.lstrace'), '--', exe, '300', '4096']);
    assert.equal(exact.status, 0, exact.stderr);
    assert.match(exact.stdout, /leak_here/);
    assert.match(exact.stdout, /1\.2 MiB|1200\.0 KiB|1228800/, exact.stdout);
    assert.doesNotMatch(exact.stdout, /estimate/i);
    const sampled = leakscope(['run', '--sample', '8192', '-o', join(dir, 'sampled-text.lstrace'), '--', exe, '300', '4096']);
    assert.equal(sampled.status, 0, sampled.stderr);
    assert.match(sampled.stdout, /leak_here/);
    assert.match(sampled.stdout, /estimate/i);
  });
});
