// Cost of one ls_unwind at a uprobe-like stop 17 frames deep (unw-deep at unw_leaf, -O2
// -fomit-frame-pointer, through libc's qsort): with the per-pid cache (module reports, CFI
// kept) against the baseline of a fresh Dwfl per sample (perf's util/unwind-libdw.c way).
import { buildNative, buildProgram, root, startProgram, stop, tempDir, unwindTool } from '../test/unwind/harness.js';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

buildNative();
const dir = tempDir('ls-unw-bench-');
const prog = buildProgram('unw-deep', dir);
const child = await startProgram(prog);
try {
  // gdb holds the process at unw_leaf while ls-unwind-test measures (its timings go to stderr).
  const run = (extra: string) =>
    spawnSync('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-iex', 'set debug-file-directory /nonexistent', '-p', String(child.pid), '-ex', 'break *unw_leaf', '-ex', 'continue',
      '-ex', `eval "shell ${unwindTool} mem %d 0x%lx 0x%lx 0x%lx ${extra} 2>&1", ${child.pid}, $pc, $sp, $rbp`], { cwd: root }).stdout.toString();
  const parse = (s: string) => {
    const m = /us_per_unwind ([\d.]+) cold_us ([\d.]+) frames (\d+)/.exec(s);
    if (!m) throw new Error(`no timing in:\n${s}`);
    return { us: Number(m[1]), cold: Number(m[2]), frames: Number(m[3]) };
  };
  const cached = parse(run('--repeat 20000'));
  const fresh = parse(run('--repeat 200 --fresh'));
  console.log(`frames per stack: ${cached.frames}`);
  console.log(`cached (per-pid Dwfl):       ${cached.us.toFixed(2)} us/unwind (first unwind of a pid ${cached.cold.toFixed(0)} us)`);
  console.log(`baseline (Dwfl per sample):  ${fresh.us.toFixed(2)} us/unwind`);
  console.log(`speed-up: ${(fresh.us / cached.us).toFixed(1)}x`);
} finally {
  await stop(child);
  rmSync(dir, { recursive: true, force: true });
}
