// An independent reading of a live process's pools for the attach tests: gdb attaches to the
// process and walks its pool structures with types the compiler lays out from the allocator's
// own declarations (APR's apr_pool_t as apr_pools.c declares it; nginx's headers from Debian's
// nginx-dev, configured as Debian builds nginx), never with leakscope's profile offsets.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './helpers.js';

export interface GdbPool {
  pool: string;
  parent: string;
  tag: string;
  bytes: number;
}

/** Compiles the APR types (test/programs/gdb-apr-pool.c) into dir; returns the object file. */
export function aprTypes(dir: string): string {
  const out = join(dir, 'gdb-apr-pool.o');
  const r = spawnSync('cc', ['-g', '-c', '-I/usr/include/apr-1.0', '-o', out, join(root, 'test/programs/gdb-apr-pool.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc gdb-apr-pool.c: ${r.stderr}`);
  return out;
}

/** nginx's types as Debian builds it: nginx-dev's sources configured with Debian's flags (the
 *  generated headers carry the build's options), compiled into dir. */
export function nginxTypes(dir: string): string {
  const src = join(dir, 'nginx-src');
  if (!existsSync('/usr/share/nginx/src/conf_flags')) throw new Error('nginx-dev is not installed (apt-get install nginx-dev)');
  cpSync('/usr/share/nginx/src', src, { recursive: true });
  const conf = spawnSync('bash', ['-c', 'source ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}"'], { cwd: src, encoding: 'utf8' });
  if (conf.status !== 0) throw new Error(`nginx configure: ${conf.stdout.slice(-2000)}${conf.stderr}`);
  const out = join(dir, 'gdb-nginx-types.o');
  const inc = ['src/core', 'src/event', 'src/event/modules', 'src/os/unix', 'objs'].flatMap((d) => ['-I', join(src, d)]);
  const r = spawnSync('cc', ['-g', '-c', ...inc, '-o', out, join(root, 'test/programs/gdb-nginx-types.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc gdb-nginx-types.c: ${r.stderr}`);
  return out;
}

/** Runs a gdb script (test/attach/NAME) on process pid with the types in `types`. */
export function gdbPools(pid: number, types: string, script: string): GdbPool[] {
  const r = spawnSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', `add-symbol-file ${types} 0`, '-x', join(root, 'test/attach', script)], { encoding: 'utf8', timeout: 60000 });
  const lines = r.stdout.split('\n');
  const bad = lines.filter((l) => l.startsWith('MISMATCH'));
  if (bad.length) throw new Error(`gdb: ${bad.join('; ')}`);
  const pools = lines.filter((l) => l.startsWith('POOL ')).map((l) => {
    const [, pool, parent, tag, bytes] = l.split(' ');
    return { pool: `0x${pool}`, parent: `0x${parent}`, tag: tag === '-' ? '' : Buffer.from(tag!, 'hex').toString(), bytes: Number(bytes) };
  });
  if (pools.length === 0) throw new Error(`gdb read no pool of process ${pid} (exit ${r.status}): ${r.stderr.slice(0, 2000)}`);
  return pools;
}
