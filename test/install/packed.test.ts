// A packed install, as a user gets it: `npm pack` of this tree (once), then `npm install -g` of
// the tarball into temporary prefixes.
// - With the install step allowed (--allow-scripts): the install builds the native parts.
// - With no install step (--ignore-scripts; npm's policy may skip a dependency's install step):
//   the first `run` builds the recorder, two first uses at once build it once (the second waits
//   for the first's lock), doctor says where each part is and what builds the others.
// - With the package directory read-only (a root-owned install): the first `run` builds into
//   the per-user cache, and finds it there after; doctor says where.
// - Without one of the build packages (libbpf's headers hidden in a private mount namespace, so
//   nothing else on the machine notices): a command needing a part that cannot be built says in
//   one line what to install, doctor says the same, setup builds what it can, analysis works.
// Every command gets a private XDG_CACHE_HOME; the prefixes and caches are removed even when a
// test fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DoctorReport } from '../../src/doctor/check.js';
import type { AnalysisResult } from '../../src/analyses/result.js';

const root = new URL('../..', import.meta.url).pathname;
const fixture = join(root, 'test/fixtures/apr-pool-debug.httpd-1child.log.gz');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
let dir = '';
let tarball = '';

interface ShOpts {
  /** Hide the BPF headers (libbpf-dev) in a private mount namespace. */
  hide?: boolean;
  /** Mount this directory read-only in a private mount namespace. */
  ro?: string;
  /** The XDG_CACHE_HOME the command sees (default: the test's own, empty one). */
  cache?: string;
  cwd?: string;
}

/** argv with the private mount namespace ShOpts asks for. */
function wrap(argv: string[], opts: ShOpts): string[] {
  const mounts = [
    ...(opts.hide ? ['mount -t tmpfs none /usr/include/bpf'] : []),
    ...(opts.ro ? ['mount --bind "$LS_RO" "$LS_RO"', 'mount -o remount,bind,ro "$LS_RO" "$LS_RO"'] : []),
  ];
  return mounts.length ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${mounts.join(' && ')} && exec "$@"`, 'sh', ...argv] : argv;
}

const envOf = (opts: ShOpts): NodeJS.ProcessEnv => ({ ...process.env, XDG_CACHE_HOME: opts.cache ?? join(dir, 'cache'), LS_RO: opts.ro ?? '' });

function sh(argv: string[], opts: ShOpts = {}): SpawnSyncReturns<string> {
  const cmd = wrap(argv, opts);
  return spawnSync(cmd[0]!, cmd.slice(1), { cwd: opts.cwd ?? dir, encoding: 'utf8', timeout: 600_000, env: envOf(opts) });
}

/** Starts argv; resolves with its status and output; `onErr` sees its stderr as it comes. */
function start(argv: string[], opts: ShOpts, onErr: (all: string) => void): { child: ChildProcess; done: Promise<{ status: number | null; stderr: string }> } {
  const cmd = wrap(argv, opts);
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: dir, env: envOf(opts), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString('utf8'); onErr(stderr); });
  const done = new Promise<{ status: number | null; stderr: string }>((resolve) => child.on('close', (status) => resolve({ status, stderr })));
  return { child, done };
}

function install(prefix: string, scripts: 'allow' | 'ignore', opts: ShOpts = {}): SpawnSyncReturns<string> {
  // --foreground-scripts: the install step's own output is shown, as a user sees it with it.
  const flags = scripts === 'allow' ? ['--allow-scripts=leakscope', '--foreground-scripts'] : ['--ignore-scripts'];
  return sh(['npm', 'install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', ...flags, tarball], opts);
}

const bin = (prefix: string) => join(prefix, 'bin', 'leakscope');
const pkgDir = (prefix: string) => join(prefix, 'lib', 'node_modules', 'leakscope');
const FILES = ['bpf/build/leakscope-bpf', 'luajit/build/lstrace-luajit', 'recorder/build/libleakscope.so', 'unwind/build/libleakscope-unwind.so', 'unwind/build/ls-kstack'];
const builtFiles = (nativeDir: string) => FILES.filter((f) => existsSync(join(nativeDir, f)));
const doctor = (prefix: string, opts: ShOpts = {}) => {
  const r = sh([bin(prefix), 'doctor', '--format', 'json'], opts);
  const report = JSON.parse(r.stdout) as DoctorReport;
  return { status: r.status, report, get: (id: string) => report.checks.find((c) => c.id === id) };
};
/** The seconds a build took, from the build's own line. */
const buildSeconds = (stderr: string) => Number(/built native\/[^\n]* in ([\d.]+) s,/.exec(stderr)?.[1]);

function tracesTrue(prefix: string, trace: string, opts: ShOpts = {}): void {
  const traced = JSON.parse(sh([bin(prefix), 'analyze', '--format', 'json', trace], opts).stdout) as AnalysisResult;
  assert.equal(traced.processes.length, 1);
  assert.match(traced.processes[0]!.command ?? '', /\/bin\/true/);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-packed-'));
  // Pack a copy of the tree (its prepare step rebuilds dist/, which the tree's own must not see
  // change under other tests).
  const copy = join(dir, 'tree');
  for (const p of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'src', 'web', 'scripts', 'native', 'profiles', 'docs']) {
    cpSync(join(root, p), join(copy, p), { recursive: true, filter: (src) => !/\/native\/[^/]+\/build$/.test(src) });
  }
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
  const packed = spawnSync('npm', ['pack', '--pack-destination', dir], { cwd: copy, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
});

// Prefixes and caches are big (builds, node_modules): gone whatever the outcome.
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('the tarball holds what an install needs, and no build output', () => {
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const f of ['dist/cli/main.js', 'dist/web/report.js', 'scripts/build-native.mjs', 'scripts/system-packages.mjs', 'scripts/debian-packages.txt',
    'native/common/ls_verify.h', 'native/bpf/Makefile', 'profiles/allocators/nginx.json']) {
    assert.ok(files.includes(`package/${f}`), `package/${f} in the tarball`);
  }
  assert.deepEqual(files.filter((f) => /^package\/native\/[^/]+\/build\//.test(f)), []);
  assert.deepEqual(files.filter((f) => f.startsWith('package/test/') || f.startsWith('package/src/')), []);
});

test('with the install step allowed: the install builds the native parts; doctor, run and analyze work from it', () => {
  const prefix = join(dir, 'full');
  const r = install(prefix, 'allow');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /leakscope: not built/);
  assert.deepEqual(builtFiles(join(pkgDir(prefix), 'native')), FILES, 'every native part built at install');
  const { status, report, get } = doctor(prefix);
  assert.equal(status, 0, JSON.stringify(report.checks.filter((c) => c.status === 'fail')));
  assert.ok(report.ok);
  for (const id of ['native-bpf', 'native-luajit', 'native-recorder', 'native-unwind', 'native-unwind-ls-kstack', 'verifier-bpf', 'verifier-luajit', 'verifier-unwind', 'packages-build']) {
    assert.equal(get(id)?.status, 'ok', id);
  }
  assert.equal(get('native-recorder')?.title, 'native/recorder: built (libleakscope.so) in the package');
  const setup = sh([bin(prefix), 'setup']);
  assert.equal(setup.status, 0, setup.stderr);
  assert.equal(setup.stderr, '', 'all built: nothing to do');
  assert.deepEqual(setup.stdout.trim().split('\n').map((l) => l.split(': ').pop()).sort(), FILES.map((f) => join(pkgDir(prefix), 'native', f)).sort(), 'setup says where each part is');
  const trace = join(dir, 'true.lstrace');
  const run = sh([bin(prefix), 'run', '--no-summary', '-o', trace, '--', '/bin/true']);
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /building/, 'nothing left to build on first use');
  tracesTrue(prefix, trace);
  const an = sh([bin(prefix), 'analyze', '--format', 'json', fixture]);
  assert.equal(an.status, 0, an.stderr);
  const res = JSON.parse(an.stdout) as AnalysisResult;
  const pchild = res.processes.flatMap((p) => p.poolClasses).find((c) => c.name === 'pchild');
  assert.equal(pchild?.verdict.verdict, 'leak', 'the fixture child\'s leaking pool class found');
});

// One install without its install step, copied (before any first use) for the cases after it.
let plain = '';
function plainCopy(name: string): string {
  const to = join(dir, name);
  cpSync(plain, to, { recursive: true, verbatimSymlinks: true });
  return to;
}

test('with no install step: the first run builds the recorder; two first uses at once build it once; doctor says where', async (t) => {
  plain = join(dir, 'plain');
  const r = install(plain, 'ignore');
  assert.equal(r.status, 0, r.stderr);
  const native = join(pkgDir(plain), 'native');
  assert.deepEqual(builtFiles(native), [], 'nothing built at install');
  for (const name of ['ro', 'nobpf']) plainCopy(name);

  const before = doctor(plain);
  assert.equal(before.get('native-recorder')?.status, 'warn');
  assert.equal(before.get('native-recorder')?.title, 'native/recorder: not built yet: the first command that needs it builds it');
  assert.equal(before.get('native-recorder')?.fix, 'leakscope setup builds it now');
  assert.equal(before.get('native-bpf')?.status, 'warn', 'buildable on first use: not a failure');

  // Two first uses at once, made to meet: the test holds the build lock until both wait for it.
  const holder = spawn('flock', [join(native, '.build.lock'), 'sh', '-c', 'echo locked; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => { if (holder.exitCode === null) holder.kill(); });
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  let waiting = 0;
  let release: () => void = () => {};
  const bothWait = new Promise<void>((resolve) => { release = resolve; });
  const runs = ['a', 'b'].map((n) => {
    let seen = false;
    return start([bin(plain), 'run', '--no-summary', '-o', join(dir, `first-${n}.lstrace`), '--', '/bin/true'], {}, (err) => {
      if (!seen && /another leakscope is building the native parts; waiting for it/.test(err)) { seen = true; if (++waiting === 2) release(); }
    });
  });
  const failedEarly = Promise.race(runs.map((x) => x.done)).then((x) => { throw new Error(`a first use ended while the lock was held: ${x.stderr}`); });
  await Promise.race([bothWait, failedEarly]);
  assert.deepEqual(builtFiles(native), [], 'nothing built while the lock is held');
  holder.stdin!.end(); // releases the lock
  const [a, b] = await Promise.all(runs.map((x) => x.done));
  for (const x of [a!, b!]) {
    assert.equal(x.status, 0, x.stderr);
    assert.match(x.stderr, new RegExp(`^leakscope: building the native parts \\(first use: native/recorder\\) into ${native} …$`, 'm'));
  }
  const builders = [a!, b!].filter((x) => /built native\/recorder in/.test(x.stderr));
  assert.equal(builders.length, 1, `one build: ${a!.stderr}\n${b!.stderr}`);
  t.diagnostic(`first use: native/recorder built in ${buildSeconds(builders[0]!.stderr)} s`);
  for (const n of ['a', 'b']) tracesTrue(plain, join(dir, `first-${n}.lstrace`));
  assert.deepEqual(builtFiles(native), ['recorder/build/libleakscope.so'], 'the recorder alone: what run needs');
  assert.deepEqual(readdirSync(native).filter((f) => f.startsWith('.build-')), [], 'no private copy left behind');

  const after = doctor(plain);
  assert.equal(after.get('native-recorder')?.status, 'ok');
  assert.equal(after.get('native-recorder')?.title, 'native/recorder: built (libleakscope.so) in the package');
  assert.match(after.get('native-recorder')?.detail ?? '', new RegExp(`; ${native}$`));
  assert.equal(after.get('native-bpf')?.title, 'native/bpf: not built yet: the first command that needs it builds it');
});

test('with the package read-only: the first run builds into the per-user cache; doctor says so', (t) => {
  const prefix = join(dir, 'ro');
  const cache = join(dir, 'cache-ro');
  const opts: ShOpts = { ro: pkgDir(prefix), cache };
  const into = join(cache, 'leakscope', version, 'native');
  const trace = join(dir, 'ro.lstrace');
  const run = sh([bin(prefix), 'run', '--no-summary', '-o', trace, '--', '/bin/true'], opts);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`^leakscope: building the native parts \\(first use: native/recorder\\) into ${into} …$`, 'm'));
  assert.match(run.stderr, new RegExp(`^leakscope: built native/recorder in [\\d.]+ s, into ${into}$`, 'm'));
  t.diagnostic(`first use into the cache: native/recorder built in ${buildSeconds(run.stderr)} s`);
  tracesTrue(prefix, trace, opts);
  assert.deepEqual(builtFiles(into), ['recorder/build/libleakscope.so']);
  assert.deepEqual(builtFiles(join(pkgDir(prefix), 'native')), []);
  assert.deepEqual(readdirSync(into).filter((f) => f.startsWith('.build-')), [], 'no private copy left behind');

  const again = sh([bin(prefix), 'run', '--no-summary', '-o', trace, '--', '/bin/true'], opts);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /building/, 'found in the cache');

  const { get } = doctor(prefix, opts);
  assert.equal(get('native-recorder')?.status, 'ok');
  assert.equal(get('native-recorder')?.title, 'native/recorder: built (libleakscope.so) in the user cache');
  assert.match(get('native-recorder')?.detail ?? '', new RegExp(`; ${into}$`));
  assert.equal(get('native-bpf')?.title, 'native/bpf: not built yet: the first command that needs it builds it', 'the cache is writable');
});

test('without libbpf-dev: a command needing a part that cannot be built says what to install in one line; doctor says the same; setup builds the rest', () => {
  const prefix = join(dir, 'nobpf');
  const opts: ShOpts = { hide: true };
  const native = join(pkgDir(prefix), 'native');
  const { status, get } = doctor(prefix, opts);
  assert.equal(status, 1, 'attach cannot work: doctor says not ready');
  assert.equal(get('native-bpf')?.status, 'fail');
  assert.equal(get('native-bpf')?.title, 'native/bpf: not built: missing libbpf-dev');
  assert.equal(get('native-bpf')?.fix, 'apt-get install -y libbpf-dev, then leakscope setup');
  assert.equal(get('native-luajit')?.title, 'native/luajit: not built: missing libbpf-dev');
  assert.equal(get('packages-build')?.title, 'build packages: missing libbpf-dev');
  assert.equal(get('packages-build')?.fix, 'apt-get install -y libbpf-dev, then leakscope setup');
  assert.equal(get('native-recorder')?.status, 'warn');

  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    for (const [args, what] of [[['--allocator', 'luajit'], 'the LuaJIT tracer'], [['--allocator', 'libc'], 'the BPF loader']] as const) {
      const at = sh([bin(prefix), 'attach', '--pid', String(sleeper.pid), ...args, '--duration', '1s'], opts);
      assert.notEqual(at.status, 0);
      assert.equal(at.stderr, `leakscope: ${what} is not built: this machine lacks libbpf-dev: apt-get install -y libbpf-dev, then leakscope setup\n`);
    }
  } finally {
    sleeper.kill();
  }
  assert.deepEqual(builtFiles(native), [], 'nothing tried that cannot be built');

  const setup = sh([bin(prefix), 'setup'], opts);
  assert.equal(setup.status, 1, 'not every part built');
  const lines = setup.stderr.split('\n').filter((l) => l.startsWith('leakscope: not built'));
  assert.equal(lines.length, 1, setup.stderr);
  assert.match(lines[0]!, /^leakscope: not built: native\/bpf \(missing libbpf-dev\); native\/luajit \(missing libbpf-dev\); native\/unwind\/kstack \(missing libbpf-dev\)\. Install them with 'apt-get install -y libbpf-dev', then run 'leakscope setup'/);
  assert.match(lines[0]!, /the commands that read files \(analyze, report, export, diff, info\) work/);
  assert.match(setup.stdout, /^the BPF loader: not built: this machine lacks libbpf-dev: apt-get install -y libbpf-dev, then leakscope setup$/m);
  assert.deepEqual(builtFiles(native), ['recorder/build/libleakscope.so', 'unwind/build/libleakscope-unwind.so'], 'what needs no libbpf is built');
  assert.equal(doctor(prefix, opts).get('native-unwind-ls-kstack')?.title, 'native/unwind: ls-kstack not built: missing libbpf-dev');

  const trace = join(dir, 'nobpf.lstrace');
  const run = sh([bin(prefix), 'run', '--no-summary', '-o', trace, '--', '/bin/true'], opts);
  assert.equal(run.status, 0, `run needs only the recorder: ${run.stderr}`);
  tracesTrue(prefix, trace, opts);
  const an = sh([bin(prefix), 'analyze', '--format', 'json', fixture], opts);
  assert.equal(an.status, 0, an.stderr);
  assert.ok((JSON.parse(an.stdout) as AnalysisResult).processes.length > 0);
});
