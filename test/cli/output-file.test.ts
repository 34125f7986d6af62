// Output files never damage what they land on (issue 17, items 3, 4, 10, 18): a device or FIFO is
// written in place, a symlink planted by another user (or under the temporary name) is never
// written through, a replaced file keeps its mode and owner, an output that is an input is
// refused, `-o -` is stdout everywhere, and no temporary file survives an error or a signal.
// The machine's /dev/null is never used: devices are made with mknod in a private directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cli, cliCommand, root, spawnCli, until } from '../support/cli.js';

const GOOD = join(root, 'test/fixtures/nginx-debug.1worker.log.gz');
const APR = join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz');
const NOBODY = 65534;
let dir = '';
const f = (n: string) => join(dir, n);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-output-file-'));
  chmodSync(dir, 0o1777);  // a shared directory, as /tmp is
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every command that writes a whole file, writing to `out`. */
const writers: { name: string; args: (out: string) => string[] }[] = [
  { name: 'import', args: (o) => ['import', GOOD, '-o', o] },
  { name: 'report', args: (o) => ['report', GOOD, '-o', o] },
  { name: 'export', args: (o) => ['export', GOOD, '--to', 'pprof', '-o', o] },
  { name: 'diff', args: (o) => ['diff', GOOD, GOOD, '-o', o] },
];

const tempsIn = (d: string) => readdirSync(d).filter((n) => n.endsWith('.tmp'));

test('a character device or FIFO named as the output is written in place, never replaced', async () => {
  for (const w of writers) {
    const dev = f(`null-${w.name}`);
    execFileSync('mknod', [dev, 'c', '1', '3']);
    const r = await cli(w.args(dev));
    assert.equal(r.code, 0, `${w.name}: ${r.stderr}`);
    const st = lstatSync(dev);
    assert.ok(st.isCharacterDevice(), `${w.name} -o DEVICE replaced the device with a ${st.isFile() ? 'regular file' : 'non-device'}`);
    assert.deepEqual(tempsIn(dir), []);
    rmSync(dev);
  }
  // A FIFO: the output arrives through it whole.
  const fifo = f('fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('sh', ['-c', 'exec cat "$0" > "$1"', fifo, `${fifo}.got`], { stdio: 'ignore' });
  const read = new Promise((r) => reader.once('exit', r));
  const r = await cli(['export', GOOD, '--to', 'collapsed', '-o', fifo]);
  assert.equal(r.code, 0, r.stderr);
  await read;
  const viaStdout = await cli(['export', GOOD, '--to', 'collapsed', '-o', '-']);
  assert.ok(lstatSync(fifo).isFIFO());
  assert.ok(viaStdout.stdout.length > 0);
  assert.equal(readFileSync(`${fifo}.got`, 'utf8'), viaStdout.stdout);
});

test('another user\'s symlink at the output name is refused; the file it points to is untouched', async () => {
  const victim = f('root-only');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  for (const w of writers) {
    const link = f(`planted-${w.name}`);
    symlinkSync(victim, link);
    execFileSync('chown', ['-h', `${NOBODY}:${NOBODY}`, link]);
    const r = await cli(w.args(link));
    assert.equal(r.code, 2, `${w.name}: ${r.stderr}`);
    assert.match(r.stderr, /^leakscope: .*planted-\w+: is a symbolic link of another user \(uid 65534\); leakscope does not write through it[^\n]*\n$/);
    assert.equal(readFileSync(victim, 'utf8'), 'secret\n', `${w.name} wrote through the planted link`);
    assert.ok(lstatSync(link).isSymbolicLink());
  }
  // Our own link is followed: the file it names is replaced, the link stays.
  const mine = f('mine.html');
  writeFileSync(mine, 'old');
  symlinkSync(mine, f('mine-link.html'));
  const r = await cli(['report', GOOD, '-o', f('mine-link.html')]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lstatSync(f('mine-link.html')).isSymbolicLink());
  assert.match(readFileSync(mine, 'utf8'), /^<!doctype html>/i);
});

test('a symlink planted under the temporary name is never written through (the name is not predictable)', async () => {
  // The shell plants links under the names a leakscope with its pid ($$, kept by exec) would
  // have used, then becomes that leakscope.
  const victim = f('victim');
  writeFileSync(victim, 'keep\n', { mode: 0o600 });
  for (const w of writers) {
    const out = f(`out-${w.name}`);
    const r = await cli(w.args(out), { shell: `ln -s ${victim} ${dir}/.out-${w.name}.$$.tmp` });
    assert.equal(r.code, 0, `${w.name}: ${r.stderr}`);
    assert.equal(readFileSync(victim, 'utf8'), 'keep\n', `${w.name} wrote through the planted temporary name`);
    assert.ok(lstatSync(out).isFile() && !lstatSync(out).isSymbolicLink());
  }
});

test('a replaced file keeps its mode and owner', async () => {
  for (const w of writers) {
    const out = f(`owned-${w.name}`);
    writeFileSync(out, 'old');
    chownSync(out, NOBODY, NOBODY);
    chmodSync(out, 0o640);
    const r = await cli(w.args(out));
    assert.equal(r.code, 0, `${w.name}: ${r.stderr}`);
    const st = statSync(out);
    assert.notEqual(readFileSync(out, 'latin1'), 'old');
    assert.equal(st.mode & 0o777, 0o640, `${w.name}: mode ${(st.mode & 0o777).toString(8)}`);
    assert.equal(st.uid, NOBODY, `${w.name}: owner`);
    assert.equal(st.gid, NOBODY, `${w.name}: group`);
  }
});

test('an output that is also an input is refused, and the input stays whole', async () => {
  const input = f('input.log.gz');
  writeFileSync(input, readFileSync(GOOD));
  const before = readFileSync(input);
  for (const args of [
    ['import', input, '-o', input],
    ['report', input, '-o', input],
    ['export', input, '--to', 'collapsed', '-o', input],
    ['diff', GOOD, input, '-o', input],
    ['diff', input, '--from', '1', '-o', input],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /^leakscope: .*input\.log\.gz: is also an input; write to another file\n$/);
    assert.deepEqual(readFileSync(input), before, `${args.join(' ')} damaged its input`);
  }
});

test('-o - is stdout for every command that writes a file; no file named "-" appears', async () => {
  const cwd = mkdtempSync(join(dir, 'cwd-'));
  for (const [args, check] of [
    [['import', GOOD, '-o', '-'], (s: Buffer) => s.subarray(0, 8).toString() === 'LSTRACE1'],
    [['report', GOOD, '-o', '-'], (s: Buffer) => /^<!doctype html>/i.test(s.toString())],
    [['export', GOOD, '--to', 'collapsed', '-o', '-'], (s: Buffer) => /;ngx_/.test(s.toString())],
    [['export', GOOD, '--to', 'pprof', '-o', '-'], (s: Buffer) => s[0] === 0x1f && s[1] === 0x8b],
    [['diff', GOOD, GOOD, '-o', '-'], (s: Buffer) => /What grew/.test(s.toString())],
  ] as [string[], (s: Buffer) => boolean][]) {
    const [node, argv] = cliCommand(args);
    const r = spawnSync(node, argv, { cwd: root, env: { ...process.env, CI: '1' } });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(check(r.stdout), `${args.join(' ')}: stdout is not the output`);
    const r2 = spawnSync(node, argv, { cwd, env: { ...process.env, CI: '1' } });
    assert.equal(r2.status, 0);
    assert.deepEqual(readdirSync(cwd), [], `${args[0]} -o - left a file`);
  }
});

test('no temporary file survives SIGINT, SIGTERM or SIGHUP; one left by SIGKILL is removed by the next output', async () => {
  const text = gunzipSync(readFileSync(APR));
  const firstPart = text.subarray(0, text.indexOf('\n', 200_000) + 1);
  const sigDir = mkdtempSync(join(dir, 'sig-'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL'] as const) {
    const out = join(sigDir, 'x.lstrace');
    // stdin stays open: import waits for the rest of the log with its temporary file open.
    const child = spawnCli(['import', '-', '-o', out], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdin!.write(firstPart);
    await until(() => tempsIn(sigDir).length === 1, 60_000, `the temporary file (${stderr})`);
    const ended = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
    child.kill(sig);
    assert.equal(await ended, sig, `${sig}: ${stderr}`);
    child.stdin!.destroy();
    if (sig === 'SIGKILL') {
      assert.equal(tempsIn(sigDir).length, 1, 'SIGKILL cannot be caught');
      const r = await cli(['import', GOOD, '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(out));
    } else {
      assert.ok(!existsSync(out), `${sig}: output left`);
    }
    assert.deepEqual(tempsIn(sigDir), [], `${sig}: temporary file left`);
  }
});

test('run: a device named as the report is written in place', async () => {
  const dev = f('run-null.json');
  execFileSync('mknod', [dev, 'c', '1', '3']);
  mkdirSync(f('run-cwd'));
  const r = await cli(['run', '--trace', f('run-cwd/t.lstrace'), '-o', dev, '--', '/bin/true'], { cwd: f('run-cwd') });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(lstatSync(dev).isCharacterDevice(), 'run -o DEVICE replaced the device');
});
