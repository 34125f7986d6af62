// Cost of the kernel side for a traced process: ns per mmap+munmap (64 KiB) untraced, traced
// by bpftrace's tracepoints (no stacks), and with ls-kstack's whole user stacks per mmap.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startKernelTrace } from '../src/kernel/trace.js';
import { kstackAvailable } from '../src/kernel/kstack.js';
import { root, size, startBench, type Figure } from './support/record.js';
import { track } from './support/cost.js';

const bench = startBench('kernel');
const N = size('LSBENCH_MMAPS', 50000, 10000);
execFileSync('make', ['-s', '-C', join(root, 'native/unwind')]);
const dir = mkdtempSync(join(tmpdir(), 'ls-kbench-'));
const prog = join(dir, 'loop');
execFileSync('gcc', ['-O2', '-fomit-frame-pointer', '-o', prog, join(root, 'test/programs/unw-mmaploop.c')]);

async function run(mode: 'off' | 'bpftrace' | 'kstack'): Promise<{ ns: number; events: number; lost: number; stacksLost: number }> {
  const child = track(spawn(prog, [String(N)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  await it.next(); // pid
  let events = 0;
  const trace = mode === 'off' ? undefined : await startKernelTrace({
    sink: { event: (e) => { if (e.kind === 'mmap') events++; } }, startMonoNs: process.hrtime.bigint(),
    pids: [child.pid!], rssIntervalMs: 0, machine: false, lifecycle: false, mmapStacks: mode === 'kstack',
  });
  child.stdin.write('go\n');
  const ns = Number((await it.next()).value);
  await new Promise((r) => child.once('exit', r));
  const stats = await trace?.stop();
  return { ns, events, lost: stats?.lost ?? 0, stacksLost: stats?.stacksLost ?? 0 };
}

// Rounds of untraced / bpftrace / ls-kstack, each ratio against the untraced run of its round.
const ROUNDS = size('LSBENCH_ROUNDS', 3, 1);
try {
  const rounds: Figure[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const off = await run('off');
    const bt = await run('bpftrace');
    console.log(`round ${i + 1}: untraced ${off.ns.toFixed(0)} ns per mmap+munmap`);
    console.log(`  bpftrace (no stacks):     ${bt.ns.toFixed(0)} ns (${(bt.ns / off.ns).toFixed(1)}x), ${bt.events} of ${N} mmaps seen, ${bt.lost} events reported lost`);
    const round: Record<string, Figure> = { untracedNs: off.ns, bpftrace: { ns: bt.ns, seen: bt.events, lost: bt.lost } };
    if (kstackAvailable()) {
      const ks = await run('kstack');
      console.log(`  ls-kstack (whole stacks): ${ks.ns.toFixed(0)} ns (${(ks.ns / off.ns).toFixed(1)}x), ${ks.events} of ${N} mmaps seen, ${ks.lost} events lost, ${ks.stacksLost} stacks dropped`);
      round.kstack = { ns: ks.ns, seen: ks.events, lost: ks.lost, stacksLost: ks.stacksLost };
    }
    rounds.push(round);
  }
  bench.finish({ mmaps: N, rounds });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
