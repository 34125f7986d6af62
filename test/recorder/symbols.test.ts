// Symbolization after the run (src/symbols/): inlined frames spliced into stacks, and the fast
// definition scan agreeing with the full trace reader, on intact and damaged files.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Event } from '../../src/model/events.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { scanDefinitions } from '../../src/symbols/scan.js';
import { symbolizeTrace } from '../../src/symbols/symbolize.js';
import { readTrace } from '../../src/trace/reader.js';
import { buildRecorder, compile, root, runJson, sitesWith, workDir } from './harness.js';

const KEEP = new Set(['frame', 'stack', 'module', 'fork', 'exec']);

async function both(path: string): Promise<{ read: string[]; scan: string[]; scanWarnings: string[] }> {
  const read: string[] = [];
  const scan: string[] = [];
  const scanWarnings: string[] = [];
  await readTrace(path, { event: (e: Event) => { if (KEEP.has(e.kind)) read.push(JSON.stringify({ ...e, t: 0 })); } }, { onWarning: () => {} });
  await scanDefinitions(path, { event: (e) => scan.push(JSON.stringify({ ...e, t: 0 })) }, (w) => scanWarnings.push(w));
  return { read, scan, scanWarnings };
}

describe('symbols', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('symbols');
  });

  it('shows an inlined allocation site, then the function it was inlined into', () => {
    const exe = compile(dir, 'rec-inline');
    const { run, result } = runJson(join(dir, 'inline.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const s = sitesWith(result.processes[0]!, 'inlined_leaf');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 25 * 64);
    const fns = s[0]!.stack.map((f) => f.fn);
    const i = fns.indexOf('inlined_leaf');
    assert.equal(fns[i + 1], 'outer_caller', fns.join(' <- '));
    assert.equal(s[0]!.stack[i]!.inlined, true);
    assert.equal(s[0]!.stack[i + 1]!.inlined, false);
    assert.ok(fns.includes('main'));
  });

  it('keeps a file address (module+0xvaddr) for a frame of a stripped binary that nothing names', () => {
    const full = join(dir, 'rec-stripped-full');
    execFileSync('gcc', ['-O2', '-fomit-frame-pointer', '-o', full, join(root, 'test', 'programs', 'rec-stripped.c')]);
    const exe = join(dir, 'rec-stripped');
    copyFileSync(full, exe);
    execFileSync('strip', ['--strip-all', exe]);
    const { run, result } = runJson(join(dir, 'stripped.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const site = result.processes[0]!.sites.find((x) => x.bytes === 9 * 333);
    assert.ok(site, JSON.stringify(result.processes[0]!.sites.map((x) => [x.label, x.bytes])));
    const leaf = site.stack.find((f) => f.module.endsWith('/rec-stripped'))!;
    assert.equal(leaf.fn, '');
    assert.match(site.label, /^rec-stripped\+0x[0-9a-f]+$/);
    // The address lies inside hidden_leak, as the unstripped build's symbol table places it.
    const sym = execFileSync('nm', ['-S', full], { encoding: 'utf8' }).split('\n').find((l) => / hidden_leak/.test(l))!;
    const [start, size] = sym.split(' ').slice(0, 2).map((h) => parseInt(h, 16)) as [number, number];
    assert.equal(site.label, `rec-stripped+0x${leaf.vaddr!.toString(16)}`);
    assert.ok(leaf.vaddr! >= start && leaf.vaddr! < start + size, `0x${leaf.vaddr!.toString(16)} in hidden_leak [0x${start.toString(16)}, +${size})`);
  });

  it('demangles C++ names, with the inlined template method before its caller', () => {
    const exe = join(dir, 'rec-cpp');
    execFileSync('g++', ['-O2', '-g', '-fomit-frame-pointer', '-o', exe, join(root, 'test', 'programs', 'rec-cpp.cpp')]);
    const { run, result } = runJson(join(dir, 'cpp.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    const s = sitesWith(result.processes[0]!, 'cache::Store<cache::Entry>::make(int)');
    assert.equal(s.length, 1, JSON.stringify(result.processes[0]!.sites.map((x) => x.label)));
    assert.equal(s[0]!.count, 12);
    assert.equal(s[0]!.bytes, 12 * 40 * 16);
    const st = s[0]!.stack;
    const i = st.findIndex((f) => f.fn === 'cache::Store<cache::Entry>::make(int)');
    assert.equal(st[i]!.inlined, true);
    assert.match(st[i]!.file, /rec-cpp\.cpp$/);
    assert.equal(st[i + 1]!.fn, 'cache::Store<cache::Entry>::fill(int)');
    assert.equal(st[i + 1]!.inlined, false);
    assert.equal(st[i + 2]!.fn, 'main');
    assert.ok(!st.some((f) => f.fn.startsWith('_Z')), 'no mangled name left');
    assert.equal(sitesWith(result.processes[0]!, 'main').filter((x) => x.bytes === 3 * 16).length, 0, 'delete[] balanced new[]');
  });

  it('llvm-symbolizer and addr2line give the same frames (inlined ones included)', async () => {
    const exe = compile(dir, 'rec-inline');
    const raw = join(dir, 'raw.lstrace');
    execFileSync(exe, [], { env: { ...process.env, LD_PRELOAD: join(root, 'native', 'recorder', 'build', 'libleakscope.so'), LEAKSCOPE_TRACE: raw } });
    const stacks = async (tool: 'llvm-symbolizer' | 'addr2line'): Promise<string[]> => {
      const copy = join(dir, `${tool}.lstrace`);
      copyFileSync(raw, copy);
      const stats = await symbolizeTrace(copy, { tool });
      assert.ok(stats.resolved > 0 && stats.resolved <= stats.frames, JSON.stringify(stats));
      const tables = new SymbolTables();
      const out: string[] = [];
      const events: Event[] = [];
      await readTrace(copy, { event: (e: Event) => events.push(e) });
      for (const e of events) {
        if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
        else if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      }
      for (const e of events) {
        // The program's own frames (libc has no debug info here: the two tools name its
        // aliases differently).
        if (e.kind === 'alloc' && e.size === 64) {
          out.push(tables.scope(e.pid).stackFrames(e.stack).filter((f) => f.module === exe)
            .map((f) => `${f.fn}@${f.file.split('/').pop()}:${f.line}${f.inlined ? '(i)' : ''}`).join(' < '));
        }
      }
      return out;
    };
    const llvm = await stacks('llvm-symbolizer');
    const binutils = await stacks('addr2line');
    assert.equal(llvm.length, 25);
    assert.match(llvm[0]!, /^inlined_leaf@rec-inline\.c:\d+\(i\) < outer_caller@rec-inline\.c:\d+ < main@rec-inline\.c:\d+ < _start@/);
    assert.deepEqual(binutils, llvm);
  });

  it('the definition scan yields exactly what the reader does', async () => {
    const fixture = join(root, 'test', 'fixtures', 'lstrace', 'every-kind.lstrace');
    const a = await both(fixture);
    assert.ok(a.read.length >= 5);
    assert.deepEqual(a.scan, a.read);
    assert.deepEqual(a.scanWarnings, []);

    const exe = compile(dir, 'rec-fork');
    const trace = join(dir, 'fork.lstrace');
    runJson(trace, [exe]);
    const b = await both(trace);
    assert.equal(b.read.filter((s) => s.includes('"kind":"fork"')).length, 2);
    assert.deepEqual(b.scan, b.read);

    // Damage: a flipped byte inside the first chunk, and a cut last chunk.
    const bytes = readFileSync(trace);
    const first = bytes.indexOf('LSCK');
    bytes[first + 20] ^= 0xff;
    const damaged = join(dir, 'damaged.lstrace');
    writeFileSync(damaged, bytes.subarray(0, bytes.length - 5));
    const c = await both(damaged);
    assert.deepEqual(c.scan, c.read);
    assert.ok(c.scan.length < b.scan.length);
    assert.ok(c.scanWarnings.some((w) => /damaged/.test(w)) && c.scanWarnings.some((w) => /truncated/.test(w)), c.scanWarnings.join('; '));
  });
});
