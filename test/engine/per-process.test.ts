// A process costs little until it has data (issue 17 item 16: ~70 KB each, 20,000 processes took
// 1.4 GB): 20,000 processes that only start, fork and exit, or allocate one block each, folded
// and analyzed, stay under 16 KB each (about 6 KB measured, so a 2x margin and more).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const used = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const N = 20_000;

for (const alloc of [false, true]) {
  test(`${N.toLocaleString('en')} processes ${alloc ? 'with one allocation each' : 'without data'}: under 16 KB each, folded and analyzed`, () => {
    const before = used();
    const e = new Engine({ meta: { format: 1, clock: 'ns', source: 'test' } });
    for (let i = 0; i < N; i++) {
      const pid = 1000 + i;
      if (i > 0) e.event({ kind: 'fork', pid, t: i * 10, parentPid: pid - 1 });
      else e.event({ kind: 'process', pid, t: 0, ppid: 1, command: 'server', exe: '/usr/sbin/server' });
      if (alloc) e.alloc(pid, pid, i * 10 + 1, 0x10000 + i * 64, 48, 0);
      e.event({ kind: 'exit', pid, t: i * 10 + 2, code: 0 });
    }
    const state = e.finish();
    const result = analyze(state);
    const perProcess = (used() - before) / N;
    assert.equal(result.processes.length, N);
    if (alloc) assert.equal(result.processes[N - 1]!.outstanding.heapBytes, 48);
    assert.ok(perProcess < 16 * 1024, `${(perProcess / 1024).toFixed(1)} KB per process`);
    void state;
  });
}
