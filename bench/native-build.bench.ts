// What a first use costs: the wall time of building the native parts with the machine's
// compilers, as an installed leakscope does when no install step ran (scripts/build-native.mjs
// --into a fresh directory): the recorder alone (the first `run`), and every part (`leakscope
// setup`, or the first `attach` and `run`). Each run starts from nothing. Writes
// bench/results/native-build.json. LSBENCH_RUNS: runs of each (default 3, quick 1).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATIVE, NATIVE_NAMES } from '../src/native/parts.js';
import { root, size, startBench } from './support/record.js';

const bench = startBench('native-build');
const runs = size('LSBENCH_RUNS', 3, 1);
const cases: Record<string, string[]> = {
  recorder: [NATIVE.recorder.file],
  all: NATIVE_NAMES.map((n) => NATIVE[n].file),
};
const figures: Record<string, number[]> = {};
for (const [name, need] of Object.entries(cases)) {
  figures[`${name}Seconds`] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'ls-bench-native-'));
    try {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs'), '--into', join(dir, 'native'), '--need', need.join(',')], { encoding: 'utf8' });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (r.status !== 0) throw new Error(`the build failed: ${r.stderr}`);
      figures[`${name}Seconds`]!.push(Number(s.toFixed(2)));
      console.log(`${name}: ${s.toFixed(1)} s`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
bench.finish({ runs, ...figures });
