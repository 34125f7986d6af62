// Bad input through the real CLI, as users run it: every command that reads files gets garbage,
// empty, truncated (gzip, zstd, trace), binary-after-text, a directory, a missing file, bad option
// values. Fatal problems: exactly one stderr line "leakscope: ...", non-zero exit, no stack trace,
// no output file. Partly good input: the good part still reported, one warning line, exit 1.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { testDir } from '../support/tmp.js';
import { cli as leakscope, type CliOptions } from '../support/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => join(root, 'test/fixtures', name);
const dir = testDir('ls-bad-input');
const out = join(dir, 'out');
const f = (name: string) => join(dir, name);
const GOOD = fixture('nginx-debug.1worker.log.gz');

interface Run { code: number; stdout: string; stderr: string; rssKiB?: number }

/** The real CLI (test/support/cli.ts), with its peak RSS (rssKiB) when asked with `rss`. */
const cli = (args: string[], opts: CliOptions = {}): Promise<Run> => leakscope(args, opts);

/** Runs `jobs` at most four at a time. */
async function pool<T>(jobs: (() => Promise<T>)[], width = 4): Promise<T[]> {
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

const noStack = (r: Run, what: string) => assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: stack trace on stderr:\n${r.stderr}`);

/** A fatal error: one line, non-zero exit, nothing on stdout, no stack trace. */
function oneLineError(r: Run, what: string, re: RegExp): void {
  assert.notEqual(r.code, 0, `${what}: exit 0\n${r.stderr}`);
  assert.match(r.stderr, /^leakscope: [^\n]+\n$/, `${what}: not exactly one "leakscope:" line:\n${r.stderr}`);
  assert.match(r.stderr, re, what);
  assert.equal(r.stdout, '', `${what}: stdout not empty`);
  noStack(r, what);
}

/** Only `leakscope:` lines on stderr (the progress rule when piped, and no stray output). */
function onlyOwnLines(r: Run, what: string): void {
  for (const line of r.stderr.split('\n').filter(Boolean)) assert.match(line, /^leakscope: /, `${what}: stray stderr line: ${line}`);
  noStack(r, what);
}

// A pseudo-random, reproducible byte stream (with NUL bytes, like any binary data).
function junk(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

const aprText = () => gunzipSync(readFileSync(fixture('apr-pool-debug.httpd-1child.log.gz')));

before(async () => {
  mkdirSync(out);
  mkdirSync(f('adir'));
  const g = junk(4096, 7);
  g[0] = 0x9e; // starts like no known format
  writeFileSync(f('garbage.bin'), g);
  writeFileSync(f('empty.log'), '');
  writeFileSync(f('trunc.log.gz'), readFileSync(fixture('apr-pool-debug.httpd-1child.log.gz')).subarray(0, 30_000));
  const zst = execFileSync('zstd', ['-q', '-c'], { input: aprText(), maxBuffer: 64 << 20 });
  writeFileSync(f('trunc.log.zst'), zst.subarray(0, Math.floor(zst.length / 8)));
  writeFileSync(f('trunc.lstrace'), readFileSync(fixture('lstrace/every-kind.lstrace')).subarray(0, 500));
  const text = aprText();
  const firstLines = text.subarray(0, text.indexOf('\n', 4000) + 1);
  writeFileSync(f('binlog.log'), Buffer.concat([firstLines, junk(100_000, 11)]));
  // 50 MB on one line, no newline, after a plausible APR pool-debug prefix.
  await new Promise<void>((resolve, reject) => {
    const ws = createWriteStream(f('huge.log'));
    ws.on('error', reject);
    ws.write('POOL DEBUG: [3153/140113293346688]  PALLOC (       241/       241/    244591) 0x555754c80080 "p" <a.c:1> 0x555754c207e0 (5/5/0) ');
    const block = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 50; i++) ws.write(block);
    ws.end(resolve);
  });
});

// How each command that reads files is run on one input; `output` is the file it would write.
const readers: { cmd: string; args: (input: string, tag: string) => string[]; output?: (tag: string) => string }[] = [
  { cmd: 'analyze', args: (i) => ['analyze', i] },
  { cmd: 'info', args: (i) => ['info', i] },
  { cmd: 'import', args: (i, t) => ['import', i, '-o', join(out, `${t}.lstrace`)], output: (t) => join(out, `${t}.lstrace`) },
  { cmd: 'report', args: (i, t) => ['report', i, '-o', join(out, `${t}.html`)], output: (t) => join(out, `${t}.html`) },
  { cmd: 'export', args: (i, t) => ['export', i, '--to', 'pprof', '-o', join(out, `${t}.pb`)], output: (t) => join(out, `${t}.pb`) },
  { cmd: 'diff', args: (i) => ['diff', i, i] },
];

test('unreadable inputs: one line saying what and what to do, non-zero exit, no output file', async () => {
  const inputs: [string, string, RegExp][] = [
    ['garbage', f('garbage.bin'), /garbage\.bin: unknown format \(expected .*\); use --from NAME to force/],
    ['empty', f('empty.log'), /empty\.log: empty file/],
    ['directory', f('adir'), /adir: is a directory; give the .* files inside it/],
    ['missing', f('missing.log'), /missing\.log: no such file/],
  ];
  const jobs = inputs.flatMap(([kind, path, re]) => readers.map((r) => async () => {
    const tag = `${r.cmd}-${kind}`;
    const res = await cli(r.args(path, tag));
    oneLineError(res, `${r.cmd} on ${kind}`, re);
    if (r.output) {
      assert.ok(!existsSync(r.output(tag)), `${r.cmd} on ${kind} left ${r.output(tag)}`);
    }
  }));
  // The same from stdin ('-').
  jobs.push(async () => oneLineError(await cli(['analyze', '-'], { input: Buffer.alloc(0) }), 'analyze of empty stdin', /^leakscope: -: empty file/));
  jobs.push(async () => oneLineError(await cli(['import', '-', '-o', join(out, 'stdin-garbage.lstrace')], { input: readFileSync(f('garbage.bin')) }), 'import of garbage stdin', /^leakscope: -: unknown format/));
  await pool(jobs);
  assert.deepEqual(readdirSync(out).filter((n) => n.includes('garbage') || n.includes('empty') || n.includes('missing') || n.includes('directory') || n.endsWith('.tmp')), []);
});

test('partly good inputs (truncated gzip/zstd/trace, binary after a text log): the good part reported, one warning, exit 1', async () => {
  const inputs: [string, string, RegExp][] = [
    ['trunc-gz', f('trunc.log.gz'), /trunc\.log\.gz: gzip data cut short .*kept what came before/],
    ['trunc-zst', f('trunc.log.zst'), /trunc\.log\.zst: zstd data cut short .*kept what came before/],
    ['trunc-trace', f('trunc.lstrace'), /trunc\.lstrace: last chunk truncated at byte \d+/],
    ['binary-tail', f('binlog.log'), /binlog\.log: binary data \(NUL bytes\) in \d+ line\(s\), first at line \d+/],
  ];
  // Every command on the truncated gzip; the cheaper three on the others (time budget).
  const jobs = inputs.flatMap(([kind, path, re], n) => readers.filter((r) => n === 0 || ['analyze', 'info', 'import'].includes(r.cmd)).map((r) => async () => {
    const tag = `${r.cmd}-${kind}`;
    const res = await cli(r.args(path, tag));
    const what = `${r.cmd} on ${kind}`;
    onlyOwnLines(res, what);
    if (r.cmd === 'info') {
      // info describes the file: the damage is part of its answer, not a failure.
      assert.equal(res.code, 0, `${what}: ${res.stderr}`);
      assert.match(res.stdout, /events: +[1-9]/, what);
      assert.match(res.stdout.replace(/\n\s+/g, ' '), re, what);
      return;
    }
    assert.equal(res.code, 1, `${what}: exit ${res.code}\n${res.stderr}`);
    const warnings = res.stderr.split('\n').filter((l) => l.startsWith('leakscope: warning: '));
    assert.ok(warnings.some((w) => re.test(w)), `${what}: no damage warning:\n${res.stderr}`);
    // One warning; besides it only the command's own status line (report/export: "wrote").
    assert.equal(warnings.length, 1, `${what}: not one warning:\n${res.stderr}`);
    const others = res.stderr.split('\n').filter((l) => l && !l.startsWith('leakscope: warning: '));
    assert.ok(others.every((l) => /^leakscope: (wrote|imported) /.test(l)), `${what}: unexpected lines:\n${res.stderr}`);
    if (r.output) assert.ok(statSync(r.output(tag)).size > 0, `${what}: no output`);
    else assert.ok(res.stdout.length > 0, `${what}: nothing reported`);
    if (r.cmd === 'analyze') assert.match(res.stdout, /=== Process \d+/, `${what}: no process reported`);
  }));
  await pool(jobs);
});

test('unknown --from and bad option values: one line each, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['analyze', GOOD, '--from', 'nope'], /unknown input format "nope" for --from \(known: lstrace, apr-log/],
    [['info', GOOD, '--from', 'nope'], /unknown input format "nope"/],
    [['import', GOOD, '-o', join(out, 'from.lstrace'), '--from', 'nope'], /unknown input format "nope"/],
    [['report', GOOD, '-o', join(out, 'from.html'), '--from', 'nope'], /unknown input format "nope"/],
    [['export', GOOD, '--to', 'pprof', '-o', join(out, 'from.pb'), '--from', 'nope'], /unknown input format "nope"/],
    [['diff', GOOD, GOOD, '--source', 'nope'], /unknown input format "nope"/],
    [['analyze', GOOD, '--top', 'x'], /option '--top <n>' argument 'x' is invalid\. It must be a whole number from 1 to 1000000; see `leakscope analyze --help`/],
    [['report', GOOD, '-o', join(out, 'top.html'), '--top', 'x'], /option '--top <n>' argument 'x' is invalid\. It must be a whole number from 1 to 1000000/],
    [['report', GOOD, '-o', join(out, 'top.html'), '--top', '0'], /option '--top <n>' argument '0' is invalid\. It must be a whole number from 1 to 1000000/],
    [['export', GOOD, '--to', 'pprof', '-o', join(out, 'pid.pb'), '--pid', '0'], /option '--pid <pid>' argument '0' is invalid\. It must be a whole number from 1 to 4194304/],
    [['doctor', '--exe', f('no-such-exe')], /--exe: .*no-such-exe: no such file/],
    [['analyze', GOOD, '--min-age', '5q'], /--min-age "5q": expected a duration such as 30s/],
    [['analyze', GOOD, '--format', 'yaml'], /option '--format <format>' argument 'yaml' is invalid\. Allowed choices are text, json; see/],
    [['info', GOOD, '--format', 'yaml'], /option '--format <format>' argument 'yaml' is invalid\. Allowed choices are text, json; see/],
    [['diff', GOOD, GOOD, '--format', 'yaml'], /option '--format <format>' argument 'yaml' is invalid\. Allowed choices are text, json, html; see/],
    [['doctor', '--format', 'yaml'], /option '--format <fmt>' argument 'yaml' is invalid\. Allowed choices are text, json; see/],
    [['export', GOOD, '--to', 'yaml', '-o', join(out, 'to.x')], /option '--to <format>' argument 'yaml' is invalid\. Allowed choices are pprof, speedscope, collapsed; see/],
    [['analyze', GOOD, '--pid', 'abc'], /option '--pid <pid>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['report', GOOD, '-o', join(out, 'pid.html'), '--pid', 'abc'], /option '--pid <pid>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['export', GOOD, '--to', 'pprof', '-o', join(out, 'pid.pb'), '--pid', 'abc'], /option '--pid <pid>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['doctor', '--pid', 'abc'], /option '-p, --pid <pid>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['kernel', '--pid', 'abc'], /option '-p, --pid <pid\.\.\.>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['attach', '--pid', 'abc'], /option '-p, --pid <pid>' argument 'abc' is invalid\. It must be a whole number from 1 to 4194304/],
    [['attach', '--exe', '/etc/passwd'], /\/etc\/passwd: not an ELF executable/],
    [['snapshot', 'abc'], /value 'abc' is invalid for argument 'pid'\. It must be a whole number from 1 to 4194304/],
    [['mark', 'abc', 'label'], /value 'abc' is invalid for argument 'pid'\. It must be a whole number from 1 to 4194304/],
    [['kernel', '--pid', String(process.pid), '--duration', 'forever', '-o', join(out, 'k.lstrace')], /option '-d, --duration <time>' argument 'forever' is invalid\. It must be a duration such as 30s, 5m or 1500ms; see/],
    [['attach', '--pid', String(process.pid), '--duration', 'forever'], /option '-d, --duration <time>' argument 'forever' is invalid\. It must be a duration such as 30s, 5m or 1500ms; see/],
    [['diff', GOOD, '--from', '5q'], /--from "5q": not a time .* nor a marker name/],
  ];
  await pool(cases.map(([args, re]) => async () => {
    const r = await cli(args);
    oneLineError(r, args.join(' '), re);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
  }));
  assert.deepEqual(readdirSync(out).filter((n) => /^(from|top|pid|to|k)\./.test(n)), []);
});

test('usage errors from the option parser are one line that says where the usage is', async () => {
  const cases: [string[], RegExp][] = [
    [['bogus'], /^leakscope: unknown command 'bogus'; see `leakscope --help`\n$/],
    [['analyze'], /^leakscope: missing required argument 'files'; see `leakscope analyze --help`\n$/],
    [['report', GOOD, '-o', join(out, 'fmt.html'), '--format', 'yaml'], /^leakscope: unknown option '--format' \(did you mean --from\?\); see `leakscope report --help`\n$/],
    [['import', GOOD], /^leakscope: required option '-o, --output <trace>' not specified; see `leakscope import --help`\n$/],
    [['run'], /^leakscope: missing required argument 'command'; see `leakscope run --help`\n$/],
    [['snapshot'], /^leakscope: missing required argument 'pid'/],
  ];
  await pool(cases.map(([args, re]) => async () => oneLineError(await cli(args), args.join(' '), re)));
});

test('--help of the program and of every command exits 0 and prints usage', async () => {
  const cmds = ['analyze', 'info', 'import', 'run', 'snapshot', 'attach', 'doctor', 'setup', 'kernel', 'report', 'export', 'diff', 'mark'];
  const top = await cli(['--help']);
  assert.equal(top.code, 0, top.stderr);
  for (const c of cmds) assert.match(top.stdout, new RegExp(`\\n  ${c} `), `--help lists ${c}`);
  await pool(cmds.map((c) => async () => {
    const r = await cli([c, '--help']);
    assert.equal(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: leakscope ${c} `), c);
    assert.equal(r.stderr, '');
  }));
});

test('run: no such command → one line, exit 127, no stray trace; not executable → 126', async () => {
  const cwd = join(dir, 'run-cwd');
  mkdirSync(cwd);
  const missing = await cli(['run', '--', '/nonexistent'], { cwd });
  oneLineError(missing, 'run -- /nonexistent', /^leakscope: \/nonexistent: command not found/);
  assert.equal(missing.code, 127);
  const notExe = f('not-exe.sh');
  writeFileSync(notExe, 'echo hi\n', { mode: 0o644 });
  const denied = await cli(['run', '--', notExe], { cwd });
  oneLineError(denied, 'run -- not-executable', /not-exe\.sh: permission denied/);
  assert.equal(denied.code, 126);
  assert.deepEqual(readdirSync(cwd), [], 'run left files behind');
});

test('snapshot and mark: a process that does not exist, or is not traced → one line', async () => {
  const gone = spawnSync('true');
  const dead = String(gone.pid);  // reaped: no such process (pids are not reused this fast)
  const cases: [string[], RegExp][] = [
    [['snapshot', dead], new RegExp(`no process ${dead}`)],
    [['mark', dead, 'x'], new RegExp(`no process ${dead}`)],
    [['attach', '--pid', dead], new RegExp(`process ${dead} does not exist`)],
    [['kernel', '--pid', dead, '-o', join(out, 'kernel-dead.lstrace')], new RegExp(`no process ${dead}`)],
    [['snapshot', String(process.pid)], new RegExp(`process ${process.pid} is not running under \`leakscope run\``)],
    [['mark', String(process.pid), 'x'], /has no LEAKSCOPE_TRACE in its environment .*pass --trace FILE/],
    [['mark', String(process.pid), 'x', '--trace', f('garbage.bin')], /garbage\.bin: not a leakscope trace/],
  ];
  await pool(cases.map(([args, re]) => async () => oneLineError(await cli(args), args.join(' '), re)));
  assert.ok(!existsSync(join(out, 'kernel-dead.lstrace')), 'kernel left a header-only trace');
});

test('a 50 MB line without newline: memory stays bounded, no crash', async () => {
  const [analyze, info] = await pool([
    () => cli(['analyze', f('huge.log')], { rss: true }),
    () => cli(['info', f('huge.log')], { rss: true }),
  ]);
  for (const [what, r] of [['analyze', analyze], ['info', info]] as const) {
    onlyOwnLines(r!, what);
    assert.ok(r!.code === 0 || /^leakscope: [^\n]+\n$/.test(r!.stderr), `${what}: ${r!.code} ${r!.stderr}`);
    assert.ok(r!.rssKiB !== undefined && r!.rssKiB > 0, `${what}: no RSS measured`);
    // The file is 50 MB; reading it into memory (as a string, twice) would pass 150 MB of growth.
    assert.ok(r!.rssKiB! < 200 * 1024, `${what}: peak RSS ${r!.rssKiB} KiB`);
  }
  // (warnings wrap at the terminal width, wherever the input's path makes them: compare unwrapped)
  assert.match(analyze!.stdout.replace(/\s+/g, ' '), /1 record\(s\) not understood, e\.g\. line 1/);
});

test('output files are written atomically: a write that fails leaves the old file, no half file, no temp file', async () => {
  const target = join(out, 'atomic.html');
  writeFileSync(target, 'the previous report\n');
  // 200 blocks of 512 bytes: the report is larger. SIGXFSZ ignored, so the write fails with EFBIG.
  const limit = "trap '' XFSZ; ulimit -f 200";
  const r = await cli(['report', fixture('apr-pool-debug.httpd-1child.log.gz'), '-o', target], { shell: limit });
  oneLineError(r, 'report over the file size limit', /atomic\.html: cannot write \(file too large.*\); nothing was written/);
  assert.equal(readFileSync(target, 'utf8'), 'the previous report\n');
  const exp = join(out, 'atomic.json');
  writeFileSync(exp, 'old\n');
  const e = await cli(['export', fixture('apr-pool-debug.httpd-1child.log.gz'), '--to', 'speedscope', '-o', exp], { shell: 'trap "" XFSZ; ulimit -f 8' });
  oneLineError(e, 'export over the file size limit', /atomic\.json: cannot write \(file too large/);
  assert.equal(readFileSync(exp, 'utf8'), 'old\n');
  const d = await cli(['diff', fixture('apr-pool-debug.httpd-1child.log.gz'), '--from', '1000', '--format', 'html', '-o', join(out, 'atomic-diff.html')], { shell: 'trap "" XFSZ; ulimit -f 2' });
  oneLineError(d, 'diff over the file size limit', /atomic-diff\.html: cannot write \(file too large/);
  assert.ok(!existsSync(join(out, 'atomic-diff.html')));
  const imp = join(out, 'atomic.lstrace');
  writeFileSync(imp, 'the previous trace\n');
  const i = await cli(['import', fixture('apr-pool-debug.httpd-1child.log.gz'), '-o', imp], { shell: 'trap "" XFSZ; ulimit -f 8' });
  oneLineError(i, 'import over the file size limit', /atomic\.lstrace: cannot write \(file too large.*\); nothing was written/);
  assert.equal(readFileSync(imp, 'utf8'), 'the previous trace\n');
  assert.deepEqual(readdirSync(out).filter((n) => n.endsWith('.tmp')), []);
});

test('progress rule: a long read with stderr piped prints nothing extra', async () => {
  // A larger input: the APR log three times over (13 MB of text), gzip'd as users keep logs.
  const big = f('big.log');
  const t = aprText();
  writeFileSync(big, Buffer.concat([t, t, t]));
  const env = { CI: undefined, TERM: 'xterm-256color' };
  const [a, i, imp] = await pool([
    () => cli(['analyze', big, '--format', 'json'], { env }),
    () => cli(['info', big], { env }),
    () => cli(['import', big, '-o', join(out, 'big.lstrace')], { env }),
  ], 3);
  assert.equal(a!.code, 0, a!.stderr);
  assert.equal(a!.stderr, '');
  assert.ok(JSON.parse(a!.stdout).processes.length > 0);
  assert.equal(i!.code, 0, i!.stderr);
  assert.equal(i!.stderr, '');
  assert.equal(imp!.code, 0, imp!.stderr);
  // Its warnings (a note on skipped lines here) and the one summary line; no progress bar.
  onlyOwnLines(imp!, 'import');
  assert.match(imp!.stderr, /\nleakscope: imported [\d,]+ events from 1 file into .*big\.lstrace \([\d,]+ bytes\); [\d,]+ bad records, \d+ warnings?\n$/);
  assert.doesNotMatch(imp!.stderr, /\r|\x1b\[/, 'terminal control sequences');
  const rep = await cli(['report', big, '-o', join(out, 'big.html')], { env });
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(rep.stderr, /^leakscope: wrote .*big\.html \(\d+ KiB\)\n$/);
});
