// Builds an nginx dynamic module of ours against Debian's nginx (the nginx-dev package's sources
// with Debian's own configure flags, so the module is binary compatible with /usr/sbin/nginx).
// nginx's configure takes 20-45 s, so the module is kept in node_modules/.cache, keyed by the
// module's sources and Debian's flags: later runs take it from there.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const NGINX_SRC = '/usr/share/nginx/src';

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed (${code}): ${err}`))));
  });
}

/** The path of the built module (a .so for load_module). `name` is a directory of test/programs/agent. */
export async function nginxModule(name: string): Promise<string> {
  if (!existsSync(join(NGINX_SRC, 'conf_flags'))) throw new Error(`${NGINX_SRC} is missing: install nginx-dev (.ci/run lists it)`);
  const src = join(root, 'test/programs/agent', name);
  const h = createHash('sha256');
  for (const f of readdirSync(src).sort()) h.update(f).update(readFileSync(join(src, f)));
  h.update(readFileSync(join(NGINX_SRC, 'conf_flags')));
  h.update(readFileSync('/usr/sbin/nginx').subarray(0, 1 << 20));
  const cacheDir = join(root, 'node_modules/.cache/leakscope-tests', `${name}-${h.digest('hex').slice(0, 16)}`);
  const so = join(cacheDir, `${name}.so`);
  if (existsSync(so)) return so;
  const work = mkdtempSync(join(tmpdir(), 'leakscope-ngxmod-'));
  try {
    cpSync(NGINX_SRC, join(work, 'nginx'), { recursive: true });
    cpSync(src, join(work, name), { recursive: true });
    await run('bash', ['-c', `source ./conf_flags && ./configure "\${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$1"`, 'configure', join(work, name)], join(work, 'nginx'));
    await run('make', ['-f', 'objs/Makefile', '-j2', 'modules'], join(work, 'nginx'));
    mkdirSync(cacheDir, { recursive: true });
    // appears whole or not at all: another run may be building the same module
    const tmp = `${so}.${process.pid}`;
    cpSync(join(work, 'nginx/objs', `${name}.so`), tmp);
    renameSync(tmp, so);
    return so;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
