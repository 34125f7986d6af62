// The system packages leakscope uses (scripts/debian-packages.txt): which are missing, and the
// one command that installs them. Used by .ci/run, scripts/run-tests.mjs (npm test),
// scripts/build-native.mjs (npm install) and `leakscope doctor`.
//
//   node scripts/system-packages.mjs missing ROLES [--json]   missing packages of ROLES
//                                                              (comma-separated, or all)
//   node scripts/system-packages.mjs install ROLES            installs those missing (root, apt-get)
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
export const LIST = process.env.LEAKSCOPE_PACKAGE_LIST || join(here, 'debian-packages.txt');
export const ROLES = ['build', 'run', 'test', 'bench'];

/** @returns {{ pkg: string, role: string, found: string[], parts: string[], what: string }[]} */
export function readList(path = LIST) {
  const out = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [pkg, role, found, parts, ...what] = line.trim().split(/\s+/);
    if (!pkg || !ROLES.includes(role) || !found || !parts) throw new Error(`${path}: bad line: ${line}`);
    out.push({ pkg, role, found: found.split(','), parts: parts === '-' ? [] : parts.split(','), what: what.join(' ') });
  }
  return out;
}

function onPath(cmd) {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  return dirs.some((d) => {
    if (!d) return false;
    try { accessSync(join(d, cmd), constants.X_OK); return true; } catch { return false; }
  });
}

let includeDirs;
function hasHeader(h) {
  includeDirs ??= ['/usr/local/include', '/usr/include', ...(() => {
    try { return readdirSync('/usr/include').filter((d) => /-linux-gnu/.test(d)).map((d) => join('/usr/include', d)); } catch { return []; }
  })()];
  return includeDirs.some((d) => existsSync(join(d, h)));
}

let dpkgStatus;
function dpkgInstalled(pkg, all) {
  if (dpkgStatus === undefined) {
    // One dpkg-query for every package of the list (unknown ones are reported on stderr).
    const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\n', ...all], { encoding: 'utf8' });
    dpkgStatus = new Map();
    if (r.error) dpkgStatus = null;
    else for (const l of r.stdout.split('\n')) {
      const [name, ...st] = l.split(' ');
      if (name) dpkgStatus.set(name.split(':')[0], st.join(' ') === 'install ok installed');
    }
  }
  return dpkgStatus ? dpkgStatus.get(pkg) === true : false;
}

/** Is the package there? By its probes (so a toolchain from elsewhere counts), else dpkg. */
export function present(entry, list) {
  return entry.found.every((f) => {
    const [kind, name] = f.split(':');
    if (kind === 'cmd') return onPath(name);
    if (kind === 'inc') return hasHeader(name);
    return dpkgInstalled(entry.pkg, list.map((e) => e.pkg));
  });
}

/** Missing packages of the given roles. */
export function missing(roles, list = readList()) {
  dpkgStatus = undefined; // read afresh: an install may have happened since
  return list.filter((e) => roles.includes(e.role) && !present(e, list));
}

export function installCommand(pkgs) {
  return `apt-get install -y ${pkgs.join(' ')}`;
}

/** Installs pkgs with apt-get (root only). Returns an error line, or undefined when done. */
export function install(pkgs) {
  if (!pkgs.length) return undefined;
  if (process.getuid?.() !== 0) return `not root: run '${installCommand(pkgs)}' as root`;
  if (!onPath('apt-get')) return `no apt-get on this machine: install ${pkgs.join(' ')} with its package manager`;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  process.stderr.write(`leakscope: installing ${pkgs.join(' ')}\n`);
  const up = spawnSync('apt-get', ['update', '-qq'], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    const why = (r.stderr || up.stderr || '').trim().split('\n').filter(Boolean).pop() ?? `exit status ${r.status}`;
    return `apt-get could not install ${pkgs.join(' ')} (${why}): run '${installCommand(pkgs)}' as root and look at its output`;
  }
  return undefined;
}

function rolesArg(s) {
  if (!s || s === 'all') return ROLES;
  const rs = s.split(',');
  for (const r of rs) if (!ROLES.includes(r)) throw new Error(`unknown role ${r} (${ROLES.join(', ')})`);
  return rs;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const [cmd, roles, flag] = process.argv.slice(2);
  try {
    const miss = missing(rolesArg(roles));
    if (cmd === 'missing') {
      if (flag === '--json') process.stdout.write(JSON.stringify(miss) + '\n');
      else if (miss.length) process.stdout.write(miss.map((e) => e.pkg).join(' ') + '\n');
    } else if (cmd === 'install') {
      const err = install(miss.map((e) => e.pkg));
      if (err) { process.stderr.write(`leakscope: ${err}\n`); process.exit(1); }
      const still = missing(rolesArg(roles), readList());
      if (still.length) { process.stderr.write(`leakscope: still missing after apt-get: ${still.map((e) => e.pkg).join(' ')}\n`); process.exit(1); }
    } else {
      process.stderr.write('usage: system-packages.mjs missing|install [ROLES|all] [--json]\n');
      process.exit(2);
    }
  } catch (e) {
    process.stderr.write(`leakscope: ${e.message}\n`);
    process.exit(2);
  }
}
