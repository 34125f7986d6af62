// Exit codes as the README promises them (issue 17 items 9 and 11, issue 14 item 6): 2 for a bad
// option or an unreadable input (named as such, not blamed on the output), 2 and one line when
// stdout cannot be written (no space), a quiet end with SIGPIPE's status when the reader of
// stdout went away; never a stack trace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, cliCommand, root } from '../support/cli.js';

const GOOD = join(root, 'test/fixtures/nginx-debug.1worker.log.gz');
const APR = join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz');
let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-exit-codes-'));
  chmodSync(dir, 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function oneLine(r: { stderr: string }, re: RegExp, what: string): void {
  assert.match(r.stderr, /^leakscope: [^\n]+\n$/, `${what}: not one line:\n${r.stderr}`);
  assert.match(r.stderr, re, what);
}

test('usage errors exit 2 with one line; help and version exit 0', async () => {
  for (const args of [['analyze', '--bogus', GOOD], ['analyze'], ['frob'], ['report', GOOD], ['export', GOOD, '-o', 'x'], ['import', GOOD]]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r, /see `leakscope( \w+)? --help`/, args.join(' '));
  }
  for (const args of [['--help'], ['--version'], ['analyze', '--help'], ['help', 'report']]) {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('an unreadable input exits 2 and is named as the input; no output file appears', async () => {
  const sock = join(dir, 'sock');
  const server = createServer().listen(sock);
  await new Promise((r) => server.once('listening', r));
  mkdirSync(join(dir, 'private'), { mode: 0o700 });
  const secret = join(dir, 'private', 'log');
  writeFileSync(secret, 'POOL DEBUG: x\n');
  chmodSync(join(dir, 'private'), 0o755);
  chmodSync(secret, 0o000);
  try {
    const cases: [string, string[], RegExp, string?][] = [
      ['a socket', [sock], /sock: is a socket, not a file/],
      ['a device with no device behind it', ['/dev/tty'], /\/dev\/tty: cannot read \(no such device or address\)/],
      ['a file we may not read', [secret], /private\/log: cannot read \(permission denied\)/, 'nobody'],
    ];
    for (const [what, input, re, user] of cases) {
      for (const cmd of [['analyze'], ['info'], ['import', '-o', join(dir, 'out.lstrace')], ['report', '-o', join(dir, 'out.html')]]) {
        const args = [...cmd, ...input];
        const r = user
          ? spawnAs(user, args)
          : await cli(args);
        assert.equal(r.code, 2, `${cmd[0]} of ${what}: ${r.stderr}`);
        oneLine(r, re, `${cmd[0]} of ${what}`);
        assert.ok(!existsSync(join(dir, 'out.lstrace')) && !existsSync(join(dir, 'out.html')));
      }
    }
  } finally {
    server.close();
  }
});

function spawnAs(user: string, args: string[]): { code: number; stderr: string } {
  const [node, argv] = cliCommand(args);
  const r = spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user === 'nobody' ? 'nogroup' : user}`, '--clear-groups', node, ...argv], { cwd: '/', encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, stderr: r.stderr };
}

test('kernel -o into a missing directory: one line naming it, exit 2', async () => {
  const r = await cli(['kernel', '--pid', String(process.pid), '-o', join(dir, 'nodir', 'k.lstrace'), '--duration', '1s']);
  assert.equal(r.code, 2, r.stderr);
  oneLine(r, /nodir\/k\.lstrace: cannot write \(no such directory\)/, 'kernel -o nodir/x');
});

/** Runs the CLI with stdout redirected by the shell (`> /dev/full`, `| true`); its exit status. */
function shellRun(args: string[], redirect: string): { code: number; stderr: string } {
  const [node, argv] = cliCommand(args);
  const r = spawnSync('bash', ['-c', `"$@" ${redirect}; exit \${PIPESTATUS[0]}`, 'bash', node, ...argv], { cwd: root, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  return { code: r.status ?? -1, stderr: r.stderr };
}

const stdoutWriters = [
  ['analyze', APR],
  ['analyze', '--format', 'json', APR],
  ['info', APR],
  ['import', APR, '-o', '-'],
  ['export', APR, '--to', 'collapsed', '-o', '-'],
  ['diff', GOOD, GOOD],
];

test('stdout on a full device: one line saying so, exit 2, no stack trace', () => {
  for (const args of stdoutWriters) {
    const r = shellRun(args, '> /dev/full');
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    oneLine(r, /(cannot write to stdout \(no space left on device\)|no space left on device)/, `${args[0]} > /dev/full`);
  }
});

test('a reader of stdout that went away (| true): a quiet end with the status of SIGPIPE', () => {
  for (const args of stdoutWriters) {
    const r = shellRun(args, '| true');
    assert.equal(r.stderr.split('\n').filter((l) => !/^leakscope: (warning|imported|wrote)/.test(l) && l).join('\n'), '', `${args.join(' ')} | true`);
    assert.equal(r.code, 141, `${args.join(' ')}: ${r.stderr}`);
  }
});
