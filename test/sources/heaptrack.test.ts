import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Event, Frame } from '../../src/model/events.js';
import { heaptrackSource } from '../../src/sources/heaptrack.js';
import { readInputs } from '../../src/sources/open.js';
import { collect } from './collect.js';
import { cliSync } from '../support/cli.js';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import type { FastEventSink } from '../../src/model/events.js';

const PROGRAM = new URL('../programs/ht-leak.c', import.meta.url).pathname;

/** The engine's fast path without its transient call. */
function withoutTransient(e: Engine): FastEventSink {
  return {
    event: (ev) => e.event(ev),
    alloc: (...a) => e.alloc(...a),
    free: (...a) => e.free(...a),
    realloc: (...a) => e.realloc(...a),
    poolAlloc: (...a) => e.poolAlloc(...a),
    poolCreate: (...a) => e.poolCreate(...a),
    poolDestroy: (...a) => e.poolDestroy(...a),
  };
}

/** Runs ht-leak under heaptrack in `dir`; returns the heaptrack.ht-leak.PID.zst path. */
function record(dir: string, n: number, hold = 0): string {
  const exe = join(dir, 'ht-leak');
  execFileSync('gcc', ['-g', '-O2', '-o', exe, PROGRAM]);
  execFileSync('heaptrack', [exe, String(n), String(hold)], { cwd: dir, stdio: 'ignore' });
  const name = readdirSync(dir).find((f) => /^heaptrack\.ht-leak\.\d+\.zst$/.test(f));
  assert.ok(name, `no heaptrack file in ${readdirSync(dir).join(', ')}`);
  return join(dir, name);
}

/** heaptrack_print's collapsed-stack naming: `fn (file)` or `0xIP`, root first, cut at main. */
function collapsed(frames: Frame[]): string {
  const groups: Frame[][] = [];
  for (const f of frames) {
    const g = groups.at(-1);
    if (g && g[0]!.pc === f.pc) g.push(f);
    else groups.push([f]);
  }
  const mainAt = groups.findIndex((g) => g.some((f) => f.fn === 'main'));
  const kept = mainAt >= 0 ? groups.slice(0, mainAt + 1) : groups;
  const name = (f: Frame) => {
    const base = f.fn || `0x${f.pc.toString(16)}`;
    return f.file ? `${base} (${f.file.split('/').pop()})` : base;
  };
  return kept.reverse().map((g) => g.map(name).join(';')).join(';') + ';';
}

/** Our leaked bytes per collapsed stack. */
function ours(events: Event[]): Map<string, number> {
  const frames = new Map<number, Frame>();
  const stacks = new Map<number, { parent: number; frame: number }>();
  const live = new Map<number, { size: number; stack: number }>();
  for (const e of events) {
    if (e.kind === 'frame') frames.set(e.id, e.frame);
    else if (e.kind === 'stack') stacks.set(e.id, e);
    else if (e.kind === 'alloc') live.set(e.addr, e);
    else if (e.kind === 'free') live.delete(e.addr);
  }
  const out = new Map<string, number>();
  for (const a of live.values()) {
    const fs: Frame[] = [];
    for (let s = a.stack; s; s = stacks.get(s)!.parent) fs.push(frames.get(stacks.get(s)!.frame)!);
    const k = collapsed(fs);
    out.set(k, (out.get(k) ?? 0) + a.size);
  }
  return out;
}

function theirs(path: string, dir: string): Map<string, number> {
  const fg = join(dir, 'leaked.txt');
  execFileSync('heaptrack_print', ['-f', path, '--print-peaks', '0', '--print-allocators', '0', '--print-temporary', '0',
    '--flamegraph-cost-type', 'leaked', '-F', fg], { stdio: 'ignore' });
  const out = new Map<string, number>();
  for (const line of readFileSync(fg, 'utf8').split('\n')) {
    const m = /^(.*) (\d+)$/.exec(line);
    if (m && Number(m[2]) > 0) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return out;
}

test('heaptrack: leaked bytes per site match heaptrack_print on the same file (zst, gz, format 2)', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-ht-'));
  try {
    const zst = record(dir, 20000);
    const events: Event[] = [];
    const r = await readInputs([zst], { event: (e) => events.push(e) });
    assert.equal(r.stats[0]!.source, 'heaptrack');
    assert.equal(r.stats[0]!.badRecords, 0, r.stats[0]!.badSamples.join('\n'));
    const mine = ours(events);
    const ref = theirs(zst, dir);
    assert.ok(ref.size >= 2, `heaptrack_print found ${[...ref.keys()].join(' | ')}`);
    assert.deepEqual(mine, ref);
    // The known leaks, by name: 50 x 64 and 3 x 100000 (through an inlined helper).
    const byLeaf = [...mine.entries()].map(([k, v]) => `${k} ${v}`);
    assert.ok(byLeaf.some((l) => /leak_small \(ht-leak\.c\); 3200$/.test(l)), byLeaf.join('\n'));
    assert.ok(byLeaf.some((l) => /big_inline \(ht-leak\.c\);leak_big \(ht-leak\.c\); 300000$/.test(l)), byLeaf.join('\n'));
    const proc = events.find((e) => e.kind === 'process');
    assert.ok(proc && proc.kind === 'process' && String(zst).includes(`.${proc.pid}.zst`) && proc.command.includes('ht-leak'));
    const inl = events.find((e) => e.kind === 'frame' && e.frame.fn === 'big_inline');
    assert.ok(inl && inl.kind === 'frame' && inl.frame.inlined && inl.frame.line > 0);
    assert.ok(events.some((e) => e.kind === 'rss' && e.bytes > 0));
    const lastAlloc = events.filter((e) => e.kind === 'alloc').at(-1)!;
    assert.ok(lastAlloc.t > 0 && lastAlloc.t % 1e6 === 0, 'ms clock in ns');

    // gzip and file format 2 (strings without a length) give the same answer.
    const text = execFileSync('zstd', ['-dc', zst]);
    const gz = join(dir, 'heaptrack.ht-leak.4242.gz');
    writeFileSync(gz, gzipSync(text));
    const v2 = text.toString('utf8').split('\n').map((l) => l.startsWith('v ') ? l.replace(/ 3$/, ' 2') : l.startsWith('s ') ? `s ${l.slice(2).replace(/^[0-9a-f]+ /, '')}` : l).join('\n');
    const v2path = join(dir, 'heaptrack.ht-leak.4343');
    writeFileSync(v2path, v2);
    // Cut anywhere (a traced program killed mid-write): never an error, at most the cut line is bad.
    for (let i = 1; i < 12; i++) {
      const cutAt = Math.floor((text.length * i) / 12) + i;
      const cc = await collect(heaptrackSource, text.subarray(0, cutAt), 4099);
      assert.ok(cc.stats.badRecords <= 1, `cut at ${cutAt}: ${cc.stats.badSamples.join('; ')}`);
    }
    for (const p of [gz, v2path]) {
      const ev: Event[] = [];
      const rr = await readInputs([p], { event: (e) => ev.push(e) });
      assert.equal(rr.stats[0]!.source, 'heaptrack');
      assert.deepEqual(ours(ev), ref, p);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('heaptrack: bad and raw records are counted, never fatal', async () => {
  const text = [
    'v 10400 3', 'X ./x', 'I 1000 100', 's 4 main', 's 3 x.c', 's 3 /x', 'i 1000 3 1 2 a', 't 1 0', 'a 40 1',
    '+ 0', '+ 0', '- 0', '+ 7', 'zz', '- 0', '- 0', 'c 10', 'R 20', '+ 40 1 7f00',
  ].join('\n') + '\n';
  const c = await collect(heaptrackSource, text, 5);
  assert.equal(c.events.filter((e) => e.kind === 'alloc').length, 2);
  assert.equal(c.events.filter((e) => e.kind === 'free').length, 2);
  assert.equal(c.stats.badRecords, 3);
  assert.match(c.stats.warnings.join('\n'), /free\(s\) of allocations the trace never made/);
  assert.match(c.stats.warnings.join('\n'), /raw heaptrack data/);
  const rss = c.events.find((e) => e.kind === 'rss');
  assert.ok(rss && rss.kind === 'rss' && rss.bytes === 0x20 * 4096 && rss.t === 16e6);
  const a = c.events.find((e) => e.kind === 'alloc')!;
  assert.deepEqual(c.frames(a.pid, a.kind === 'alloc' ? a.stack : 0).map((f) => `${f.fn} ${f.file}:${f.line}`), ['main x.c:10']);
});

test('heaptrack: blocks allocated and freed within one time tick take the transient path, with the same figures', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-ht-'));
  try {
    // Each block freed 5 allocations later, over enough time for many ticks: some pairs fold
    // within a tick, some blocks cross a tick boundary and go through the live table.
    const zst = record(dir, 400000, 5);
    const text = execFileSync('zstd', ['-dc', zst], { maxBuffer: 1 << 30 }).toString('latin1');
    const plus = (text.match(/^\+ /gm) ?? []).length;
    const minus = (text.match(/^- /gm) ?? []).length;
    const ticks = (text.match(/^c /gm) ?? []).length;
    assert.ok(ticks >= 3, `${ticks} time ticks`);
    // The engine with its transient path, and the same engine behind a sink that lacks it
    // (so every + and - arrives as alloc and free).
    const direct = new Engine();
    let transients = 0;
    const counting: FastEventSink = {
      ...withoutTransient(direct),
      transient: (pid, tid, t, size, stack, count = 1) => { transients += count; direct.transient(pid, tid, t, size, stack, count); },
    };
    const plain = new Engine();
    const noShortcut = withoutTransient(plain);
    await readInputs([zst], counting);
    await readInputs([zst], noShortcut);
    assert.ok(transients >= 300000 && transients < 400000, `${transients} transient pairs of 400000 churned blocks`);
    const sa = direct.finish();
    const sb = plain.finish();
    // Every site's allocation totals, including sites with nothing left outstanding.
    const totals = (st: typeof sa) => {
      const t = st.processes[0]!.sites;
      return Array.from({ length: t.length }, (_, i) => `${t.stackOf(i)} ${t.allocCount(i)} ${t.allocBytes(i)} ${t.outCount(i)} ${t.outBytes(i)}`).sort();
    };
    assert.deepEqual(totals(sa), totals(sb));
    const a = analyze(sa, { top: 50 });
    const b = analyze(sb, { top: 50 });
    assert.equal(a.events, b.events);
    const pa = a.processes[0]!;
    const pb = b.processes[0]!;
    assert.deepEqual(pa.allocated, pb.allocated);
    assert.deepEqual(pa.outstanding, pb.outstanding);
    assert.deepEqual(pa.anomalies, pb.anomalies);
    assert.equal(pa.verdict.peak, pb.verdict.peak);
    const sites = (r: typeof pa) => r.sites.map((s) => `${s.label} ${s.count} ${s.bytes} ${s.allocatedCount} ${s.allocatedBytes}`).sort();
    assert.deepEqual(sites(pa), sites(pb));
    assert.equal(pa.allocated.count, plus);
    assert.equal(pa.allocated.frees, minus);
    // And what is left is heaptrack_print's answer, per site.
    const events: Event[] = [];
    await readInputs([zst], { event: (e) => events.push(e) });
    assert.deepEqual(ours(events), theirs(zst, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('heaptrack: a file cut inside a record is damaged input: the partial record is not read, the command says so and exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-ht-'));
  try {
    const text = ['v 10400 3', 'X ./x', 'I 1000 100', 's 4 main', 's 3 x.c', 'i 1000 0 1 2 a', 't 1 0']
      .concat(Array.from({ length: 0x1b }, (_, i) => `a ${(i + 1).toString(16)} 1`), ['+ 1a', '+ 1a', 'c 10', '+ 1']).join('\n');
    const path = join(dir, 'heaptrack.x.77.txt');
    writeFileSync(path, text); // no final newline: the last record was cut (it was `+ 1a`)
    const r = await readInputs([path], { event: () => {} });
    assert.equal(r.stats[0]!.source, 'heaptrack');
    assert.match(r.stats[0]!.damaged?.join('\n') ?? '', /ends in the middle of a record/);
    const cli = cliSync(['analyze', path, '--format', 'json']);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /^leakscope: warning: .*ends in the middle of a record/m);
    const j = JSON.parse(cli.stdout) as { processes: { outstanding: { heapCount: number; heapBytes: number } }[] };
    // Two blocks of info 0x1a (size 0x1b), not a third one of info 1 (size 2).
    assert.equal(j.processes[0]!.outstanding.heapCount, 2);
    assert.equal(j.processes[0]!.outstanding.heapBytes, 2 * 0x1b);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
