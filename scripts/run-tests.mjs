// Runs every test file (test/**/*.test.ts) with Node's test runner, TypeScript through tsx; the CLI the tests
// start is the one built into dist/ just before (test/support/cli.ts).
// Optional arguments filter the files by substring: `npm test -- apr nginx`.
//
// First the set-up a fresh machine lacks, so that nothing fails for a missing piece: the Debian
// packages of scripts/debian-packages.txt (build, run and test roles) are installed when missing
// (as root, with apt-get; LEAKSCOPE_TEST_NO_INSTALL=1 never installs), or the run stops at once
// with the one command that does; then the native parts are built (make, a no-op when up to date).
//
// The tests get a private TMPDIR under the system's; at the end the runner prints the suite's
// peak memory (all its processes together) and peak temporary-file use, and fails a passing run
// that left files there (a test must remove what it writes), removing them.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, lstatSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { install, installCommand, missing } from './system-packages.mjs';

const root = new URL('..', import.meta.url).pathname;
const say = (s) => process.stderr.write(`leakscope tests: ${s}\n`);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'fixtures' || name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

// --- set-up: packages, then native parts ---
const lacking = missing(['build', 'run', 'test']).map((e) => e.pkg);
if (lacking.length) {
  const err = process.env.LEAKSCOPE_TEST_NO_INSTALL
    ? `missing Debian packages ${lacking.join(' ')}: run '${installCommand(lacking)}' as root (or .ci/run, which installs them)`
    : install(lacking);
  if (err) { say(`stopped before any test: ${err}`); process.exit(2); }
  const still = missing(['build', 'run', 'test']).map((e) => e.pkg);
  if (still.length) { say(`stopped before any test: still missing after apt-get: ${still.join(' ')}`); process.exit(2); }
}
const nb = spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs')], {
  cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, LEAKSCOPE_REQUIRE_NATIVE: '1' },
});
if (nb.status !== 0) { say("stopped before any test: the native parts did not build (above); 'npm run build' shows it again"); process.exit(2); }
// The CLI the tests run is the built one (test/support/cli.ts), built now from these sources.
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (tsc.status !== 0) { say('stopped before any test: the TypeScript build failed (above)'); process.exit(2); }

// --- the run, with a private TMPDIR, memory and temporary files sampled ---
const tmp = mkdtempSync(join(tmpdir(), 'leakscope-tests-'));
// Open like /tmp itself: servers' workers (www-data) and the tests' unprivileged runs use it.
chmodSync(tmp, 0o1777);
/** Bytes under dir (files as allocated on disk), without following links. */
function du(dir) {
  let n = 0;
  let names;
  try { names = readdirSync(dir); } catch { return 0; }
  for (const name of names) {
    const p = join(dir, name);
    try {
      const st = lstatSync(p);
      n += st.blocks * 512;
      if (st.isDirectory()) n += du(p);
    } catch { /* removed meanwhile */ }
  }
  return n;
}
/** Resident memory of pid and all its descendants, in bytes. */
function treeRss(pid) {
  const kids = new Map();
  const rss = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      rss.set(Number(name), Number(f[21]) * 4096);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(name));
    } catch { /* gone */ }
  }
  let sum = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    sum += rss.get(p) ?? 0;
    todo.push(...(kids.get(p) ?? []));
  }
  return sum;
}

const started = Date.now();
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: tmp, LEAKSCOPE_TEST_BUILT: '1' },
});
let peakRss = 0, peakTmp = 0;
const sample = () => {
  peakRss = Math.max(peakRss, treeRss(child.pid));
  peakTmp = Math.max(peakTmp, du(tmp));
};
sample();
// Every 50 ms in the first second, then twice a second: a short run (one small file: ~0.4 s on
// a fast machine) was over before the first half-second sample, and read "peak memory 0 MiB".
let timer;
let early = 0;
const fast = setInterval(() => {
  sample();
  if (++early < 20) return;
  clearInterval(fast);
  timer = setInterval(sample, 500);
}, 50);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
const status = await new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
clearInterval(fast);
clearInterval(timer);
sample();

// tsx keeps its compile cache in TMPDIR (tsx-UID): the runner's, not a test's.
const left = readdirSync(tmp).filter((n) => !/^tsx-\d+$/.test(n));
const mib = (n) => `${(n / 1048576).toFixed(0)} MiB`;
say(`${files.length} files in ${((Date.now() - started) / 1000).toFixed(0)} s; peak memory ${mib(peakRss)} (every process of the suite together, sampled every 50 ms for 1 s, then twice a second); ` +
  `peak temporary files ${mib(peakTmp)} (TMPDIR ${tmp}); left behind: ${left.length ? left.map((n) => `${n} (${mib(du(join(tmp, n)) + lstatSync(join(tmp, n)).blocks * 512)})`).join(', ') : 'nothing'}`);
let exit = status;
if (status === 0 && left.length) {
  say(`FAIL: the tests passed but left ${left.join(', ')} in TMPDIR: a test must remove what it writes`);
  exit = 1;
}
if (status === 0 || !left.length) rmSync(tmp, { recursive: true, force: true });
else say(`kept ${tmp} for the failed tests: remove it when done`);
process.exit(exit);
