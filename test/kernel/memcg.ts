// A memory cgroup of our own for a test, with a limit: cgroup v2 (memory.max, no swap) when the
// unified hierarchy has the memory controller, else cgroup v1's memory hierarchy
// (memory.limit_in_bytes), under the cgroup this test runs in. Removed by remove() once empty.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Memcg {
  path: string;
  /** Write a pid here to move that process in. */
  procs: string;
  remove(): Promise<void>;
}

function v2Root(): string | undefined {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      if (readFileSync(join(root, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory')) return root;
    } catch { /* not there */ }
  }
  return undefined;
}

export function createMemcg(tag: string, limitBytes: number): Memcg {
  const name = `leakscope-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let path: string;
  const v2 = v2Root();
  if (v2) {
    path = join(v2, name);
    mkdirSync(path);
    writeFileSync(join(path, 'memory.max'), String(limitBytes));
    if (existsSync(join(path, 'memory.swap.max'))) writeFileSync(join(path, 'memory.swap.max'), '0');
  } else {
    const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('memory'));
    if (!line || !existsSync('/sys/fs/cgroup/memory')) throw new Error('no memory cgroup controller (cgroup v2 memory, or v1 /sys/fs/cgroup/memory)');
    path = join('/sys/fs/cgroup/memory', line.split(':')[2]!, name);
    mkdirSync(path);
    writeFileSync(join(path, 'memory.limit_in_bytes'), String(limitBytes));
  }
  return {
    path,
    procs: join(path, 'cgroup.procs'),
    async remove() {
      // A killed process leaves its cgroup a moment after its exit is seen.
      for (let i = 0; ; i++) {
        try {
          rmdirSync(path);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (i >= 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
  };
}
