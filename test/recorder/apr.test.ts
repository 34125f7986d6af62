// APR's exported pool API under `leakscope run`, on a program linked with Debian's libapr1:
// apr_pool_create_ex (tree), apr_pool_create_unmanaged_ex, apr_palloc, apr_pcalloc (the
// exported function), apr_pool_clear, apr_pool_destroy, apr_pool_tag. No double counting: the
// memory APR takes for its blocks (malloc or mmap) is not also reported as heap or mappings.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { PoolReport } from '../../src/analyses/result.js';
import { buildRecorder, programs, runJson, sitesWith, traceEvents, workDir } from './harness.js';

function flat(pools: PoolReport[]): PoolReport[] {
  return pools.flatMap((p) => [p, ...flat(p.children)]);
}

describe('APR pools under leakscope run', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('apr');
  });

  it('records the pool tree, pool allocations at their callers, clears and destroys', async () => {
    const exe = join(dir, 'rec-apr');
    // apr-1-config comes with libapr1-dev (pkg-config may not be installed).
    const apr = (flag: string): string[] => execFileSync('apr-1-config', [flag], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', ...apr('--includes'), '-o', exe, join(programs, 'rec-apr.c'), ...apr('--link-ld')]);
    const trace = join(dir, 'apr.lstrace');
    const { run, result } = runJson(trace, [exe]);
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes[0]!;

    const pools = flat(p.pools);
    const byTag = (tag: string): PoolReport => {
      const found = pools.filter((x) => x.tag === tag);
      assert.equal(found.length, 1, `${tag}: ${pools.map((x) => x.tag).join(', ')}`);
      return found[0]!;
    };
    const root = byTag('app-root');
    const kept = byTag('kept');
    const cleared = byTag('cleared');
    const un = byTag('unmanaged');
    assert.equal(pools.filter((x) => x.tag === 'gone').length, 0, 'a destroyed pool is not outstanding');
    // The tree: kept and cleared under app-root, app-root under APR's global pool (its NULL
    // parent read back from APR), the unmanaged pool a root of its own.
    assert.equal(kept.parent, root.pool);
    assert.equal(cleared.parent, root.pool);
    assert.notEqual(root.parent, '0x0');
    assert.equal(un.parent, '0x0');
    assert.ok(p.pools.includes(un));
    assert.equal(root.treeBytes, 10 * 300 + 5 * 200 + 3 * 50);

    // Each pool's allocations at the caller, with apr_palloc and apr_pcalloc alike.
    const site = (fn: string): { bytes: number; count: number; pool?: string } => {
      const s = sitesWith(p, fn);
      assert.equal(s.length, 1, `${fn}: ${JSON.stringify(p.sites.map((x) => x.label))}`);
      return s[0]!;
    };
    assert.equal(site('keep_in_pool').bytes, 3000);
    assert.equal(site('keep_in_pool').count, 10);
    assert.equal(site('zero_in_pool').bytes, 1000);
    assert.equal(site('zero_in_pool').count, 5);
    assert.equal(site('keep_in_pool').pool, 'kept');
    assert.equal(kept.bytes, 4000);
    // Clear released the 20 x 100 made before it; the 3 x 50 after it remain.
    assert.equal(sitesWith(p, 'before_clear').length, 0);
    assert.equal(site('after_clear').bytes, 150);
    assert.equal(cleared.clears, 1);
    assert.equal(cleared.bytes, 150);
    // Destroy released the 8 x 1000.
    assert.equal(sitesWith(p, 'in_destroyed').length, 0);
    assert.equal(site('in_unmanaged').bytes, 800);
    assert.equal(un.bytes, 800);

    // The pools' own blocks are not counted again as heap or as anonymous mappings.
    assert.equal(p.outstanding.mmapBytes, 0);
    assert.ok(p.outstanding.heapBytes < 1024, `heap ${p.outstanding.heapBytes}`);
    assert.equal(p.anomalies.unknownPool, 0);
    assert.equal(p.anomalies.unknownPoolDestroy, 0);

    const { events, warnings } = await traceEvents(trace);
    assert.deepEqual(warnings, []);
    assert.equal(events.filter((e) => e.kind === 'pool-clear').length, 1);
    assert.equal(events.filter((e) => e.kind === 'pool-destroy').length, 1);
    assert.equal(events.filter((e) => e.kind === 'pool-alloc').length >= 10 + 5 + 20 + 3 + 8 + 2, true);
  });
});
