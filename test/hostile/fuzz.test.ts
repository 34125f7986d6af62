// The fuzz suite (issue 17): generated APR, nginx, Valgrind, heaptrack and trace inputs (hostile
// records, random bytes, mutated real fixtures; gen.ts) through every reader and every output.
// In process, many cases: the only error is a UserError (an unreadable input), every output
// parses as its format, no text output holds a raw control character, an imported trace reads
// back whole and gives the same analysis, each case ends in bounded time. Through the real CLI,
// fewer cases: exit status 0, 1 or 2, at most one problem line on stderr and never a stack
// trace, peak RSS under 512 MB, bounded time, and each output file whole or absent.
//
// The seed is new each run and printed with every test (a TAP comment, and in a failure's
// message): LEAKSCOPE_FUZZ_SEED=N npm test -- hostile/fuzz runs the same inputs again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Profile } from 'pprof-format';
import { UserError } from '../../src/errors.js';
import { analyzeWithWindow } from '../../src/pipeline/window-run.js';
import { diffPoints, diffTraces } from '../../src/analyses/diff.js';
import { renderText } from '../../src/reports/text.js';
import { renderJson } from '../../src/reports/json.js';
import { DIFF_FORMATS, formatByName } from '../../src/reports/formats.js';
import type { DiffResult } from '../../src/analyses/diff.js';
import { htmlReport } from '../../src/reports/html/report.js';
import { pprofBytes } from '../../src/reports/export/pprof.js';
import { speedscope } from '../../src/reports/export/speedscope.js';
import { collapsed } from '../../src/reports/export/collapsed.js';
import { importFiles } from '../../src/cli/commands/import-run.js';
import { fileInfo } from '../../src/cli/commands/info-run.js';
import { readTrace } from '../../src/trace/reader.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { frame } from '../../src/model/events.js';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { cli } from '../support/cli.js';
import { testDir } from '../support/tmp.js';
import { FORMATS, FROM, inputs } from './gen.js';
import type { Format } from './gen.js';

const SEED = process.env.LEAKSCOPE_FUZZ_SEED ? Number(process.env.LEAKSCOPE_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const RERUN = `LEAKSCOPE_FUZZ_SEED=${SEED} npm test -- hostile/fuzz`;
/** Each test says its seed, so a failure seen in a log can be run again. */
const seeded = (t: { diagnostic(m: string): void }) => t.diagnostic(`fuzz seed ${SEED} (${RERUN})`);

const dir = testDir('ls-fuzz');
let n = 0;

// Terminal controls but the newline.
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const ABSURD = /\d{5,} TiB|\d[\d.]*e\+\d+ |-\d[\d.]* [KMGTPE]?i?B|NaN|Infinity/;
const CASE_MS = 20_000;

/** A diff in one of its output formats (reports/formats.ts). */
const renderDiff = async (d: DiffResult, f: string): Promise<string> => String(await formatByName(DIFF_FORMATS, f).render(d));

/** Outstanding memory per process: what an imported trace must give again. */
const outstanding = (r: AnalysisResult) => r.processes.map((p) => [p.pid, p.outstanding.heapBytes, p.outstanding.poolBytes, p.outstanding.heapCount]);

/** Every reader and every output of one input, in process. */
async function everyOutput(bytes: Buffer, from: string | undefined): Promise<void> {
  const file = join(dir, `in-${n++}`);
  const name = file.split('/').pop()!;
  writeFileSync(file, bytes);
  const t0 = Date.now();
  try {
    let run;
    try {
      run = await analyzeWithWindow([file], { from });
    } catch (err) {
      if (err instanceof UserError) return; // unreadable: a one-line error in the CLI
      throw err;
    }
    const r = run.result!;
    const text = renderText(r);
    assert.doesNotMatch(text, RAW);
    assert.doesNotMatch(text, ABSURD);
    const json = renderJson(r);
    assert.doesNotMatch(json, RAW);
    JSON.parse(json);
    const html = await htmlReport(r, run.window);
    assert.ok(html.endsWith('</html>\n'), 'whole HTML page');
    Profile.decode(gunzipSync(pprofBytes(run.window, {})));
    JSON.parse(JSON.stringify(speedscope(run.window, 'fuzz')));
    for (const line of collapsed(run.window).split('\n').filter(Boolean)) assert.match(line, /^[^\n]+ \d+$/);
    const d = diffTraces(r, r);
    for (const f of ['text', 'json', 'html'] as const) assert.doesNotMatch(await renderDiff(d, f), f === 'html' ? /\u001b/ : RAW);
    const end = Math.max(0, ...r.processes.map((p) => p.endT));
    await renderDiff(diffPoints(r, run.window, { t: 0, label: 'start' }, { t: end, label: 'end' }), 'text');
    await fileInfo(file, { from });
    // import: a whole trace that reads back without damage and gives the same analysis.
    const out = `${file}.lstrace`;
    const imported = await importFiles([file], out, { from });
    const back = await readTrace(out, { event() {} });
    assert.deepEqual(back.warnings, [], 'the imported trace reads back whole');
    const again = await analyzeWithWindow([out]);
    // A value the format cannot carry (an exit code or time step beyond 2^52) drops its record,
    // and the import says so; otherwise it keeps everything the analysis saw.
    const dropped = imported.warnings.some((w) => /cannot carry/.test(w));
    if (!dropped) assert.deepEqual(outstanding(again.result!), outstanding(r), 'import keeps what the analysis saw');
  } finally {
    for (const f of readdirSync(dir)) if (f === name || f.startsWith(`${name}.`)) rmSync(join(dir, f), { force: true });
  }
  assert.ok(Date.now() - t0 < CASE_MS, `one case took ${Date.now() - t0} ms`);
}

/** fc.assert, with the failure's own message and stack in the error the test runner prints. */
async function check(...args: Parameters<typeof fc.assert>): Promise<void> {
  try {
    await fc.assert(...args);
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    throw new Error(`${cause?.stack ?? cause ?? ''}\n${(err as Error).message}\nrerun: ${RERUN}`, { cause: err });
  }
}

for (const format of FORMATS) {
  test(`fuzz ${format}: every reader and output, in process`, async (t) => {
    seeded(t);
    await check(fc.asyncProperty(inputs[format], fc.boolean(), async (bytes, forced) => {
      await everyOutput(bytes, forced ? FROM[format] : undefined);
    }), { numRuns: 25, seed: SEED + FORMATS.indexOf(format) });
  });
}

test('fuzz random bytes (and a leakscope header on random bytes): one-line errors or a readable part', async (t) => {
  seeded(t);
  await check(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.constantFrom('', 'LSTRACE1', 'POOL DEBUG: [', '<valgrindoutput>', 'v 10400 3\n'), async (a, head) => {
    await everyOutput(Buffer.concat([Buffer.from(head), Buffer.from(a)]), undefined);
  }), { numRuns: 40, seed: SEED + 50 });
});

/** Runs `jobs` two at a time (the machine has two cores, shared). */
async function pool<T>(jobs: (() => Promise<T>)[], width = 2): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  }));
  return results;
}

/** How an output file must look when the command succeeded (exit 0 or 1). */
const whole: Record<string, (path: string) => Promise<void> | void> = {
  lstrace: async (p) => assert.deepEqual((await readTrace(p, { event() {} })).warnings, []),
  html: (p) => assert.ok(readFileSync(p, 'utf8').endsWith('</html>\n')),
  pb: (p) => void Profile.decode(gunzipSync(readFileSync(p))),
  json: (p) => void JSON.parse(readFileSync(p, 'utf8')),
  txt: (p) => { for (const l of readFileSync(p, 'utf8').split('\n').filter(Boolean)) assert.match(l, /^[^\n]+ \d+$/); },
  diff: (p) => assert.match(readFileSync(p, 'utf8'), /What grew/),
};

test('fuzz through the CLI: exit codes, one problem line, bounded memory and time, outputs whole or absent', async (t) => {
  seeded(t);
  const cases: { name: string; path: string; from?: string }[] = [];
  for (const format of FORMATS) {
    // One input each (the in-process tests above run many): a later sample, so a larger one;
    // every other format forced with --from.
    const k = FORMATS.indexOf(format);
    const bytes = fc.sample(inputs[format], { numRuns: 5, seed: SEED + 100 + k })[4]!;
    const path = join(dir, `cli-${format}`);
    writeFileSync(path, bytes);
    cases.push({ name: format, path, from: (k + SEED) % 2 === 1 ? FROM[format as Format] : undefined });
  }
  // A stack 100,000 frames deep (what no generator above makes: the flame graph, pprof and
  // speedscope are cut or walk it without recursion).
  const deep = join(dir, 'cli-deep-stack.lstrace');
  const w = TraceWriter.create(deep, { format: 1, clock: 'ns', source: 'fuzz' });
  w.event({ kind: 'process', pid: 5, t: 0, ppid: 1, command: 'deep', exe: 'deep' });
  for (let i = 1; i <= 100_000; i++) {
    w.event({ kind: 'frame', pid: 5, t: 0, id: i, frame: frame({ fn: `f${i}` }) });
    w.event({ kind: 'stack', pid: 5, t: 0, id: i, parent: i - 1, frame: i });
  }
  w.event({ kind: 'alloc', pid: 5, t: 1, tid: 1, addr: 0x10, size: 10, stack: 100_000 });
  await w.close();

  const outDir = mkdtempSync(join(dir, 'out-'));
  type Run = { args: string[]; out?: string; kind?: string };
  /** Every command that reads an input or writes an output, on `c` (each run its own process). */
  const commands = (c: { path: string; from?: string }): Record<string, Run> => {
    const from = c.from ? ['--from', c.from] : [];
    const o = (ext: string) => join(outDir, `${c.path.split('/').pop()}.${ext}`);
    return {
      analyze: { args: ['analyze', c.path, ...from] },
      json: { args: ['analyze', '--format', 'json', c.path, ...from] },
      info: { args: ['info', '--format', 'json', c.path, ...from] },
      import: { args: ['import', c.path, ...from, '-o', o('lstrace')], out: o('lstrace'), kind: 'lstrace' },
      report: { args: ['report', c.path, ...from, '-o', o('html')], out: o('html'), kind: 'html' },
      pprof: { args: ['export', c.path, ...from, '--to', 'pprof', '-o', o('pb')], out: o('pb'), kind: 'pb' },
      speedscope: { args: ['export', c.path, ...from, '--to', 'speedscope', '-o', o('json')], out: o('json'), kind: 'json' },
      collapsed: { args: ['export', c.path, ...from, '--to', 'collapsed', '-o', o('txt')], out: o('txt'), kind: 'txt' },
      diff: { args: ['diff', c.path, c.path, ...(c.from ? ['--source', c.from] : []), '-o', o('diff')], out: o('diff'), kind: 'diff' },
    };
  };
  // A CLI run costs a second or more (Node's start): each generated input gets three commands,
  // the outputs taken in turn from the seed, so every output meets every reader over runs and
  // each run covers every output; the deep stack goes through every output that draws stacks.
  const ROTA = ['import', 'report', 'pprof', 'speedscope', 'collapsed', 'diff', 'info', 'json'];
  const runs: { name: string; run: Run }[] = [];
  cases.forEach((c, k) => {
    const cmds = commands(c);
    runs.push({ name: c.name, run: cmds.analyze! });
    for (const j of [2 * k, 2 * k + 1]) runs.push({ name: c.name, run: cmds[ROTA[(SEED + j) % ROTA.length]!]! });
  });
  const d = commands({ path: deep });
  for (const k of ['report', 'pprof', 'speedscope', 'collapsed']) runs.push({ name: 'deep stack', run: d[k]! });

  const failed = await pool(runs.map(({ name, run: x }) => async () => {
    const what = `${name}: ${x.args.join(' ')}`;
    const r = await cli(x.args, { rss: true, timeoutMs: 120_000 });
    assert.ok([0, 1, 2].includes(r.code), `${what}: exit ${r.code}\n${r.stderr}`);
    const problems = r.stderr.split('\n').filter((l) => l && !/^leakscope: (wrote|imported) /.test(l));
    assert.ok(problems.length <= 1, `${what}: ${problems.length} problem lines:\n${r.stderr}`);
    for (const l of problems) assert.match(l, /^leakscope: /, what);
    assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, what);
    assert.ok(r.code !== 2 || r.stdout === '', `${what}: output beside a fatal error`);
    assert.ok(r.rssKiB! < 512 * 1024, `${what}: peak RSS ${r.rssKiB} KiB`);
    assert.ok(r.ms < 60_000, `${what}: ${r.ms} ms`);
    if (x.out) {
      if (r.code === 2) assert.ok(!existsSync(x.out), `${what}: output left after a fatal error`);
      else await whole[x.kind!]!(x.out);
    }
  }).map((job) => () => job().then(() => undefined, (err: Error) => err)));
  const first = failed.find((e) => e !== undefined);
  if (first) throw new Error(`${first.message}\nrerun: ${RERUN}`);
  assert.deepEqual(readdirSync(outDir).filter((f) => f.endsWith('.tmp')), [], 'temporary files left');
});
