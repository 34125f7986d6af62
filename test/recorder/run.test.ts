// `leakscope run` end to end on real C programs (-O2, no frame pointers): leak sites with exact
// bytes, counts and function names through threads, fork, exec, dlopen, constructors, realloc.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SymbolTables } from '../../src/model/stacks.js';
import { allocStacks, buildRecorder, compile, leakscope, processWith, programs, runJson, sitesWith, traceEvents, workDir } from './harness.js';

describe('leakscope run', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('run');
  });

  it('finds a leak in a loop: site, bytes, count, function and line; churn balances out', async () => {
    const exe = compile(dir, 'rec-loop');
    const trace = join(dir, 'loop.lstrace');
    const { run, result } = runJson(trace, [exe, '200', '48']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(result.processes.length, 1);
    const p = result.processes[0]!;
    const sites = sitesWith(p, 'leak_here');
    assert.equal(sites.length, 1, JSON.stringify(p.sites.map((s) => s.label)));
    assert.equal(sites[0]!.bytes, 200 * 48);
    assert.equal(sites[0]!.count, 200);
    const leaf = sites[0]!.stack.find((f) => f.fn === 'leak_here')!;
    assert.match(leaf.file, /rec-loop\.c$/);
    assert.equal(leaf.line, 7);  // the malloc line
    assert.ok(sites[0]!.stack.some((f) => f.fn === 'main'), 'callers are unwound without frame pointers');
    assert.equal(sitesWith(p, 'churn').length, 0, 'freed churn is not reported');
    assert.ok(p.allocated.count >= 200 + 2000);
    assert.equal(p.exitCode, 0);
    const { meta, warnings } = await traceEvents(trace);
    assert.deepEqual(warnings, []);
    assert.equal(meta.source, 'recorder');
    assert.equal(meta.clock, 'ns');
    assert.match(String(meta.startMonoNs), /^\d+$/);
  });

  it('unwinds right through frames of changing size and depth (alloca, recursion)', async () => {
    const exe = compile(dir, 'rec-alloca');
    const trace = join(dir, 'alloca.lstrace');
    const { run, result } = runJson(trace, [exe]);
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes[0]!;
    assert.equal(sitesWith(p, 'alloca_leaf').reduce((a, s) => a + s.count, 0), 300);
    // The stacks as recorded (the report groups a label's stacks into one site).
    const leaf = (await allocStacks(trace)).filter((a) => a.frames.some((f) => f.fn === 'alloca_leaf'));
    assert.equal(leaf.length, 300);
    const depths = new Map<number, number>();
    for (const a of leaf) {
      const fns = a.frames.map((f) => f.fn);
      assert.ok(fns.includes('alloca_frame') && fns.includes('main'), fns.join(' <- '));
      const depth = fns.filter((f) => f === 'recurse').length;
      depths.set(depth, (depths.get(depth) ?? 0) + 1);
    }
    // main calls recurse(i % 7): 1 to 7 recurse frames, each depth as often as the program made it.
    assert.deepEqual([...depths].sort((a, b) => a[0] - b[0]), [1, 2, 3, 4, 5, 6, 7].map((d) => [d, d <= 300 % 7 ? 43 : 42]));
  });

  it('records the same stacks with the fast unwinder as with libunwind alone', async () => {
    const exe = compile(dir, 'rec-bench', ['-pthread']);
    const sites = async (env: Record<string, string>, name: string): Promise<Map<string, number>> => {
      const trace = join(dir, `${name}.lstrace`);
      const { run } = runJson(trace, [exe, '2', '3000', '9'], [], env);
      assert.equal(run.status, 0, run.stderr);
      const { events } = await traceEvents(trace);
      const tables = new SymbolTables();
      const m = new Map<string, number>();
      for (const e of events) {
        if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
        else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      }
      for (const e of events) {
        if (e.kind !== 'alloc') continue;
        const key = tables.scope(e.pid).stackFrames(e.stack).map((f) => `${f.fn}:${f.line}`).join(' < ');
        m.set(key, (m.get(key) ?? 0) + 1);
      }
      return m;
    };
    const fast = await sites({}, 'fast');
    const slow = await sites({ LEAKSCOPE_UNWIND: 'libunwind' }, 'slow');
    assert.ok(fast.size >= 4, `${fast.size} stacks`);
    assert.deepEqual([...fast].sort(), [...slow].sort());
  });

  it('limits stack depth with --depth and rejects bad options in one line', async () => {
    const exe = compile(dir, 'rec-loop');
    const trace = join(dir, 'depth.lstrace');
    const { run } = runJson(trace, [exe, '20', '48'], ['--depth', '2']);
    assert.equal(run.status, 0, run.stderr);
    const { events } = await traceEvents(trace);
    const tables = new SymbolTables();
    for (const e of events) if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
    const depths = events.filter((e) => e.kind === 'alloc').map((e) => tables.scope(e.pid).stackFrameIds((e as { stack: number }).stack).length);
    assert.ok(depths.length >= 20 && depths.every((d) => d >= 1 && d <= 2), depths.join(','));
    for (const bad of [['--depth', '0'], ['--sample', 'lots'], ['--format', 'xml']]) {
      const r = leakscope(['run', ...bad, '-o', join(dir, 'bad.lstrace'), '--', exe]);
      assert.notEqual(r.status, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('records every intercepted allocation function at its own site, and anonymous mmap/munmap', async () => {
    const exe = compile(dir, 'rec-allocfns');
    const trace = join(dir, 'allocfns.lstrace');
    const { run, result } = runJson(trace, [exe]);
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes[0]!;
    // One of two blocks kept per function, at its requested size.
    const expect: [string, number][] = [
      ['via_malloc', 1001], ['via_calloc', 7 * 143], ['via_realloc', 1002], ['via_reallocarray', 3 * 401],
      ['via_aligned_alloc', 1088], ['via_memalign', 1005], ['via_valloc', 1006], ['via_pvalloc', 1007],
      ['via_posix_memalign', 1008],
    ];
    for (const [fn, bytes] of expect) {
      const s = sitesWith(p, fn);
      assert.equal(s.length, 1, `${fn}: ${JSON.stringify(p.sites.map((x) => x.label))}`);
      assert.equal(s[0]!.bytes, bytes, fn);
      assert.equal(s[0]!.count, 1, fn);
    }
    assert.equal(p.outstanding.heapCount, expect.length);
    assert.equal(p.anomalies.unknownFree, 0);
    // Anonymous mappings: 3 pages kept, 5 unmapped; the file mapping is not an allocation.
    assert.equal(p.outstanding.mmapBytes, 3 * 4096);
    const { events } = await traceEvents(trace);
    const tables = new SymbolTables();
    for (const e of events) {
      if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
      else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
    }
    // The freed block of each function was recorded too (allocated and freed).
    for (const [fn] of expect) {
      const n = events.filter((e) => e.kind === 'alloc' && tables.scope(e.pid).stackFrames(e.stack)[0]?.fn === fn).length;
      assert.equal(n, 2, fn);
    }
    assert.ok(p.allocated.frees >= expect.length);
    const mmaps = events.filter((e) => e.kind === 'mmap') as Extract<(typeof events)[number], { kind: 'mmap' }>[];
    assert.deepEqual(mmaps.map((m) => m.size), [3 * 4096, 5 * 4096]);
    for (const m of mmaps) assert.equal(tables.scope(m.pid).stackFrames(m.stack)[0]!.fn, 'via_mmap');
    assert.ok(events.some((e) => e.kind === 'munmap' && e.addr === mmaps[1]!.addr && e.size === 5 * 4096));
  });

  it('cuts stacks at 64 frames by default, keeping the frames nearest the allocation', () => {
    const exe = compile(dir, 'rec-deep');
    const deep = (extra: string[], name: string) => {
      const { run, result } = runJson(join(dir, `${name}.lstrace`), [exe, '100'], extra);
      assert.equal(run.status, 0, run.stderr);
      const s = result.processes[0]!.sites.filter((x) => x.bytes === 777);
      assert.equal(s.length, 1);
      return s[0]!.stack.map((f) => f.fn);
    };
    const cut = deep([], 'deep64');
    assert.equal(cut.length, 64);
    assert.ok(cut.every((f) => f === 'deep_leak'), cut.join(' <- '));
    const full = deep(['--depth', '200'], 'deep200');
    assert.equal(full.filter((f) => f === 'deep_leak').length, 101);
    assert.ok(full.includes('main'));
  });

  it('follows a realloc chain to its final size and site', () => {
    const exe = compile(dir, 'rec-realloc');
    const { run, result } = runJson(join(dir, 'realloc.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes[0]!;
    const sites = sitesWith(p, 'grow_buffer');
    assert.equal(sites.reduce((a, s) => a + s.bytes, 0), 4096, JSON.stringify(p.sites.map((s) => [s.label, s.bytes])));
    assert.equal(sites.reduce((a, s) => a + s.count, 0), 1);
    assert.equal(p.outstanding.heapBytes - otherBytes(p, 'grow_buffer'), 4096);
  });

  it('records threads without mixing them up', async () => {
    const exe = compile(dir, 'rec-threads', ['-pthread']);
    const trace = join(dir, 'threads.lstrace');
    const { run, result } = runJson(trace, [exe]);
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes[0]!;
    const sites = sitesWith(p, 'thread_leak');
    assert.equal(sites.reduce((a, s) => a + s.count, 0), 400);
    assert.equal(sites.reduce((a, s) => a + s.bytes, 0), 400 * 64);
    const { events } = await traceEvents(trace);
    const tids = new Set(events.filter((e) => e.kind === 'alloc' && e.size === 64).map((e) => (e as { tid: number }).tid));
    assert.equal(tids.size, 4, 'each thread keeps its own id');
    assert.ok(p.allocated.frees >= 4 * 100 * 50);
  });

  it('traces a forked child as its own process, with its leak only', () => {
    const exe = compile(dir, 'rec-fork');
    const { run, result } = runJson(join(dir, 'fork.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(result.processes.length, 3);
    const quick = processWith(result, 'quick_leak');
    assert.equal(quick.length, 1, 'a child leaving with _exit() is written out too');
    assert.equal(quick[0]!.exitCode, 9);
    assert.equal(sitesWith(quick[0]!, 'quick_leak')[0]!.bytes, 5 * 64);
    const child = processWith(result, 'child_leak');
    assert.equal(child.length, 1);
    const c = child[0]!;
    const parent = result.processes.find((p) => p.pid !== c.pid && p.pid !== quick[0]!.pid)!;
    assert.equal(c.ppid, parent.pid);
    assert.equal(c.exitCode, 7);
    const s = sitesWith(c, 'child_leak');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 50 * 128);
    assert.equal(s.reduce((a, x) => a + x.count, 0), 50);
    assert.equal(sitesWith(parent, 'child_leak').length, 0);
    assert.equal(sitesWith(parent, 'main').filter((x) => x.bytes === 256 * 20).length, 0, 'the parent freed its blocks');
  });

  it('keeps tracing across exec', () => {
    const exe = compile(dir, 'rec-exec');
    const { run, result } = runJson(join(dir, 'exec.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(result.processes.length, 2);
    const after = processWith(result, 'after_exec');
    assert.equal(after.length, 1);
    assert.equal(sitesWith(after[0]!, 'after_exec')[0]!.bytes, 5 * 300);
    assert.match(after[0]!.command, /again/);
    const before = result.processes.find((p) => p !== after[0])!;
    assert.equal(before.pid, after[0]!.pid);
    assert.equal(before.replacedByExec, true);
    assert.equal(before.outstanding.heapBytes, 4 * 700);
    // A SIGUSR2 just before exec is still the first image's marker.
    assert.deepEqual(before.markers.map((m) => m.label), ['SIGUSR2 #1']);
    assert.deepEqual(after[0]!.markers, []);
    // Trailing symbol records reach only the pid's current image: the first image's frames
    // stay addresses, but never borrow the new image's names.
    assert.equal(sitesWith(before, 'after_exec').length, 0);
  });

  it('attributes leaks in a dlopen()ed library to its own source, with its module and build id', async () => {
    const exe = compile(dir, 'rec-dlopen', ['-ldl']);
    const lib = join(dir, 'librec-plugin.so');
    execFileSync('gcc', ['-O2', '-g', '-fPIC', '-shared', '-o', lib, join(programs, 'rec-dl-lib.c')]);
    const trace = join(dir, 'dlopen.lstrace');
    const { run, result } = runJson(trace, [exe, lib]);
    assert.equal(run.status, 0, run.stderr);
    // The module map after dlopen, with the library's build id (as readelf reads it).
    const buildId = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', lib], { encoding: 'utf8' }))![1];
    const { events } = await traceEvents(trace);
    const mods = events.filter((e) => e.kind === 'module') as Extract<(typeof events)[number], { kind: 'module' }>[];
    const mod = mods.find((m) => m.path === lib);
    assert.ok(mod, mods.map((m) => m.path).join(', '));
    assert.equal(mod.buildId, buildId);
    assert.ok(mods.some((m) => m.path === exe && m.buildId.length === 40), 'the program\'s own module and build id');
    const s = sitesWith(result.processes[0]!, 'plugin_leak');
    assert.equal(s.length, 1);
    assert.equal(s[0]!.bytes, 30 * 200);
    const f = s[0]!.stack.find((x) => x.fn === 'plugin_leak')!;
    assert.match(f.file, /rec-dl-lib\.c$/);
    assert.equal(f.module, lib);
  });

  it('sees allocations made in a constructor, before main', () => {
    const exe = compile(dir, 'rec-ctor');
    const { run, result } = runJson(join(dir, 'ctor.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const s = sitesWith(result.processes[0]!, 'ctor_leak');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 10 * 1000);
  });

  it('sees allocations made before its own constructor runs (a library initialised earlier)', () => {
    const exe = compile(dir, 'rec-ctor');
    const lib = join(dir, 'librec-early.so');
    execFileSync('gcc', ['-O2', '-g', '-fPIC', '-shared', '-o', lib, join(programs, 'rec-early-lib.c')]);
    // The user's LD_PRELOAD is kept, after the recorder: the loader initialises it first.
    const { run, result } = runJson(join(dir, 'early.lstrace'), [exe], [], { LD_PRELOAD: lib });
    assert.equal(run.status, 0, run.stderr);
    const p = result.processes.find((x) => x.command.includes('rec-ctor'))!;
    const s = sitesWith(p, 'early_leak');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 6 * 555);
    assert.ok(s[0]!.stack.some((f) => f.fn === 'early_ctor'));
    assert.equal(sitesWith(p, 'ctor_leak').reduce((a, x) => a + x.bytes, 0), 10 * 1000);
  });

  it('returns the command status, says when the library is missing, and writes the report that -o names', () => {
    const exe = compile(dir, 'rec-loop');
    const missing = leakscope(['run', '-o', join(dir, 'missing.lstrace'), '--', exe], { env: { LEAKSCOPE_LIB: join(dir, 'nope.so') } });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /npm run build/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
    const nocmd = leakscope(['run', '-o', join(dir, 'nocmd.lstrace'), '--', join(dir, 'no-such-program')]);
    assert.notEqual(nocmd.status, 0);
    assert.match(nocmd.stderr, /command not found/);
    const failing = leakscope(['run', '-o', join(dir, 'fail.lstrace'), '--', 'sh', '-c', 'exit 5']);
    assert.equal(failing.status, 5, failing.stderr);
    // --report writes the summary to a file; a static program records nothing, and says so.
    const report = join(dir, 'report.json');
    const withReport = leakscope(['run', '--format', 'json', '--report', report, '-o', join(dir, 'report.lstrace'), '--', exe, '10', '100']);
    assert.equal(withReport.status, 0, withReport.stderr);
    assert.equal(withReport.stdout, '');
    const r = JSON.parse(readFileSync(report, 'utf8')) as AnalysisResult;
    assert.equal(sitesWith(r.processes[0]!, 'leak_here')[0]!.bytes, 1000);
    // -o names the report by its extension (the trace then goes to --trace); an unknown one is refused.
    const html = join(dir, 'report.html');
    const withHtml = leakscope(['run', '-o', html, '--trace', join(dir, 'html.lstrace'), '--', exe, '10', '100']);
    assert.equal(withHtml.status, 0, withHtml.stderr);
    assert.equal(withHtml.stdout, '');
    const page = readFileSync(html, 'utf8');
    assert.match(page, /^<!doctype html>/i);
    assert.match(page, /leak_here/);
    assert.ok(statSync(join(dir, 'html.lstrace')).size > 0);
    const txt = join(dir, 'report.txt');
    const withText = leakscope(['run', '-o', txt, '--trace', join(dir, 'txt.lstrace'), '--', exe, '10', '100']);
    assert.equal(withText.status, 0, withText.stderr);
    assert.match(readFileSync(txt, 'utf8'), /leak_here/);
    const badExt = leakscope(['run', '-o', join(dir, 'out.bin'), '--', exe, '10', '100']);
    assert.notEqual(badExt.status, 0);
    assert.match(badExt.stderr, /\.lstrace for the trace, \.html, \.json or \.txt for the report/);
    assert.equal(badExt.stderr.trim().split('\n').length, 1);
    const stat = compile(dir, 'rec-loop', ['-static'], 'rec-loop-static');
    const none = leakscope(['run', '-o', join(dir, 'static.lstrace'), '--', stat, '5']);
    assert.equal(none.status, 0);
    assert.match(none.stderr, /recorded nothing/);
  });
});

function otherBytes(p: { sites: { bytes: number; stack: { fn: string }[] }[] }, fn: string): number {
  return p.sites.filter((s) => !s.stack.some((f) => f.fn === fn)).reduce((a, s) => a + s.bytes, 0);
}
