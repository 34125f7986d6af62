// Numbers in an input are claims (issue 17 items 5, 8, 12, 15): values out of range are dropped,
// counted and warned about once (exit 1, damaged input), never printed as "-8192 TiB" or
// "Process 1e+30", never a crash; a Valgrind count is not memory to spend; a header's start time
// that is no time is described; NUL bytes and a runaway line are the same damage in every
// text format.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cli, root } from '../support/cli.js';
import { NS_META, rawTrace, rec } from '../support/raw-trace.js';
import type { AnalysisResult } from '../../src/analyses/result.js';

let dir = '';
const f = (n: string) => join(dir, n);
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-claims-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const U64 = 2n ** 64n - 1n;
const ABSURD = /\d{5,} TiB|e\+\d+|-\d[\d.]* [KMGTPE]?i?B|Infinity|NaN|Process \d{11,}/;

/** One damage warning line, exit 1, and the readable part reported. */
function damaged(r: { code: number; stderr: string }, re: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l && !/^leakscope: wrote /.test(l));
  assert.equal(lines.length, 1, `${what}: not one warning line:\n${r.stderr}`);
  assert.match(lines[0]!, /^leakscope: warning: /, what);
  assert.match(r.stderr, re, what);
}

test('a trace with 2^64, 2^53 + 2 and negative values: those records dropped and counted, the rest reported', async () => {
  const trace = f('u64.lstrace');
  writeFileSync(trace, rawTrace(NS_META, [
    rec.ctx(100, 1), rec.process(0, 1, 'ok', 'ok'),
    rec.alloc(10, 0x1000, 100), rec.alloc(10, 0x2000, U64), rec.alloc(10, U64, 5), rec.alloc(10, 0x3000, 2n ** 53n + 2n),
    rec.rss(1, U64), rec.poolCreate(1, 0x10, 0, 0, 'apr', 't'), rec.poolAlloc(1, 0x10, U64), rec.poolAlloc(1, 0x10, 24),
    rec.exit(1, U64), rec.kernel(1, 'oom', -(2n ** 62n)),
    rec.ctx(2n ** 40n, 1), rec.process(0, 1, 'huge pid', ''), rec.alloc(1, 0x5000, 10),
  ]));
  const warning = /u64\.lstrace: 9 record\(s\) with values out of range dropped \(first: alloc with size 18446744073709551616\)/;
  const a = await cli(['analyze', trace]);
  damaged(a, warning, 'analyze');
  assert.doesNotMatch(a.stdout, ABSURD);
  const j = await cli(['analyze', '--format', 'json', trace]);
  const r = JSON.parse(j.stdout) as AnalysisResult;
  assert.deepEqual(r.processes.map((p) => p.pid), [100]);
  assert.equal(r.processes[0]!.outstanding.heapBytes, 100);
  assert.equal(r.processes[0]!.outstanding.poolBytes, 24);
  assert.equal(r.processes[0]!.rssBytes, undefined);

  const imp = await cli(['import', trace, '-o', f('u64-out.lstrace')]);
  assert.equal(imp.code, 1, imp.stderr);
  assert.doesNotMatch(imp.stderr, /internal error/);
  assert.match(imp.stderr, /imported 4 events .* 9 bad records/);
  const again = await cli(['analyze', '--format', 'json', f('u64-out.lstrace')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as AnalysisResult).processes[0]!.outstanding.heapBytes, 100);
  for (const args of [['report', trace, '-o', f('u64.html')], ['export', trace, '--to', 'pprof', '-o', f('u64.pb')], ['diff', trace, trace]]) {
    damaged(await cli(args), warning, args[0]!);
  }
  const info = await cli(['info', trace]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /bad records: 9/);
});

test('APR, nginx and Valgrind numbers past any process: dropped, counted, warned once', async () => {
  const apr = f('big.log');
  const ok = 'POOL DEBUG: [3153/140113293346688]  PALLOC (        64/        64/    244623) 0x555754c4f770 "plog" <tables/apr_tables.c:88> 0x555754c207e0 (2/2/1) \n';
  writeFileSync(apr, [
    ok,
    'POOL DEBUG: [3153/140113293346688]  PALLOC (99999999999999999999/99999999999999999999/    244623) 0x555754c4f770 "plog" <tables/apr_tables.c:88> 0x555754c207e0 (3/3/1) \n',
    'POOL DEBUG: [1000000000000000000000000000000/1]  PALLOC (        64/        64/    244623) 0x555754c4f770 "plog" <tables/apr_tables.c:88> 0x555754c207e0 (2/2/1) \n',
  ].join(''));
  const a = await cli(['analyze', apr]);
  damaged(a, /big\.log: \d record\(s\) with values out of range dropped \(first: pool-alloc with size 1000000/, 'APR');
  assert.doesNotMatch(a.stdout, ABSURD);
  assert.match(a.stdout, /=== Process 3153/);

  const ngx = f('big-nginx.log');
  writeFileSync(ngx, [
    '2026/11/22 05:30:02 [debug] 3643#0: *1 malloc: 000055DB0B5B2C40:1024\n',
    '2026/11/22 05:30:02 [debug] 3643#0: *1 malloc: 000055DB0B5B3C40:999999999999999999999\n',
    '2026/11/22 05:30:02 [debug] 99999999999999999999#0: *1 malloc: 000055DB0B5B4C40:1024\n',
  ].join(''));
  const n = await cli(['analyze', '--from', 'nginx-log', ngx]);
  damaged(n, /big-nginx\.log: \d record\(s\) with values out of range dropped/, 'nginx');
  assert.doesNotMatch(n.stdout, ABSURD);

  const vg = f('big-pid.xml');
  writeFileSync(vg, valgrind('<pid>1000000000000000000000000000000</pid>', [[48, 1, 3], [1e40, 1, 4]]));
  const v = await cli(['analyze', vg]);
  assert.doesNotMatch(v.stdout, ABSURD);
  assert.doesNotMatch(v.stdout, /Process 1e/);
  assert.match(v.stdout, /48 B heap in 1 allocations/);
});

// A source's own warnings quote numbers from lines that are no events (an APR ownership line,
// an nginx cleanup never run), so no range check drops them: they print as written. A fuzz run
// printed "pid 1e+21" here.
test('APR and nginx warnings quote a pid past any process as written, not as 1e+21', async () => {
  const huge = '1000000000000000000000';
  const apr = f('owner.log');
  writeFileSync(apr, [
    'POOL DEBUG: [3153/140113293346688]  PALLOC (        64/        64/    244623) 0x555754c4f770 "plog" <tables/apr_tables.c:88> 0x555754c207e0 (2/2/1) \n',
    `POOL DEBUG: [${huge}/140113293346688]   OWNER 0x555754c00100 <x.c:1>\n`,
  ].join(''));
  const a = await cli(['analyze', apr]);
  // The text report wraps its lines: compare with the breaks taken out.
  const one = (s: string) => s.replace(/\s+/g, ' ');
  assert.match(one(a.stdout), new RegExp(`1 pool ownership warning\\(s\\) \\(THREAD/OWNER lines\\), first line 2: pid ${huge} pool`));
  assert.doesNotMatch(a.stdout + a.stderr, ABSURD);

  const ngx = f('cleanup.log');
  writeFileSync(ngx, [
    '2026/11/22 05:30:02 [debug] 3643#0: *1 malloc: 000055DB0B5B2C40:1024\n',
    `2026/11/22 05:30:02 [debug] ${huge}#0: *1 add cleanup: 000055DB0B5B3C40\n`,
  ].join(''));
  const n = await cli(['analyze', '--from', 'nginx-log', ngx]);
  assert.match(one(n.stdout + n.stderr), new RegExp(`pid ${huge}: 1 pool cleanup handler\\(s\\)`));
  assert.doesNotMatch(n.stdout + n.stderr, ABSURD);
});

function valgrind(pid: string, records: [number, number, number][]): string {
  return ['<?xml version="1.0"?>', '<valgrindoutput>', '<protocoltool>memcheck</protocoltool>', pid, '<ppid>1</ppid>',
    '<args><argv><exe>./x</exe></argv></args>',
    ...records.map(([bytes, blocks, line]) => `<error><kind>Leak_DefinitelyLost</kind><xwhat><text>${bytes} bytes in ${blocks} blocks</text><leakedbytes>${bytes}</leakedbytes><leakedblocks>${blocks}</leakedblocks></xwhat>` +
      `<stack><frame><ip>0x1</ip><obj>/x</obj><fn>malloc</fn></frame><frame><ip>0x${line}</ip><fn>main</fn><file>x.c</file><line>${line}</line></frame></stack></error>`),
    '</valgrindoutput>', ''].join('\n');
}

test('Valgrind claiming a billion blocks: bounded memory and time, every byte kept', async () => {
  const vg = f('billion.xml');
  writeFileSync(vg, valgrind('<pid>77</pid>', [[48_000_000_000, 1_000_000_000, 3], [4800, 1_000_000_000, 5], [160, 10, 6]]));
  const r = await cli(['analyze', '--format', 'json', vg], { rss: true });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.rssKiB! < 512 * 1024, `peak RSS ${r.rssKiB} KiB`);
  assert.ok(r.ms < 60_000, `${r.ms} ms`);
  const p = (JSON.parse(r.stdout) as AnalysisResult).processes[0]!;
  assert.equal(p.outstanding.heapBytes, 48_000_000_000 + 4800 + 160);
  assert.equal(p.outstanding.heapCount, 1_000_000 + 1 + 1, 'the budget of expanded blocks, then one allocation per record');
  assert.ok(r.stdout.includes('3 loss record(s) claim 2,000,000,010 blocks'));
});

test('info describes a start time that is no time instead of failing on it', async () => {
  const trace = f('time.lstrace');
  writeFileSync(trace, rawTrace({ ...NS_META, startWallMs: 1e300, sampleBytes: -5 }, [rec.ctx(5, 1), rec.process(0, 1, 'p', 'p'), rec.alloc(1, 0x10, 10)]));
  const r = await cli(['info', trace]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /header key startWallMs is not a time \(1e\+300\); ignored/);
  assert.match(r.stdout, /header key sampleBytes is not a sampling rate/);
  const a = await cli(['analyze', '--format', 'json', trace]);
  damaged(a, /startWallMs is not a time/, 'analyze');
  assert.equal((JSON.parse(a.stdout) as AnalysisResult).processes[0]!.outstanding.heapBytes, 10, 'no weight from a negative sampling rate');
});

test('NUL bytes in APR, nginx and heaptrack lines, and one 50 MB line: the same damage, exit 1, everywhere', async () => {
  const every5 = (text: Buffer, n: number) => {
    const lines = text.toString('latin1').split('\n').slice(0, n);
    for (let i = 100; i < lines.length; i += 5) lines[i] = `${lines[i]!.slice(0, 40)}\0${lines[i]!.slice(40)}`;
    return Buffer.from(lines.join('\n'), 'latin1');
  };
  writeFileSync(f('nul-apr.log'), every5(gunzipSync(readFileSync(join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz'))), 3000));
  writeFileSync(f('nul-nginx.log'), every5(gunzipSync(readFileSync(join(root, 'test/fixtures/nginx-debug.1worker.log.gz'))), 3000));
  const ht = ['v 10400 3', 'X ./x 1', 's 4 main', 's 3 x.c', 'i 1000 3 1 2', 't 1 0', 'a 40 1', '+ 0', '+\u0000 0', 'c 10', '+ 0', ''].join('\n');
  writeFileSync(f('nul.heaptrack'), ht);
  for (const [name, lines] of [['nul-apr.log', 580], ['nul-nginx.log', 580], ['nul.heaptrack', 1]] as const) {
    const r = await cli(['analyze', f(name)]);
    damaged(r, new RegExp(`binary data \\(NUL bytes\\) in ${lines} line\\(s\\)`), name);
    assert.match(r.stdout, /=== Process/);
  }
  await new Promise<void>((resolve, reject) => {
    const ws = createWriteStream(f('huge.log'));
    ws.on('error', reject);
    ws.write('POOL DEBUG: [3153/140113293346688]  PALLOC (       241/       241/    244591) 0x555754c80080 "p" <a.c:1> 0x555754c207e0 (5/5/0) ');
    const block = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 50; i++) ws.write(block);
    ws.end(resolve);
  });
  const r = await cli(['analyze', f('huge.log')], { rss: true });
  damaged(r, /huge\.log: 1 line\(s\) longer than 1 MiB were cut/, 'one 50 MB line');
  assert.ok(r.rssKiB! < 512 * 1024, `peak RSS ${r.rssKiB} KiB`);
});
