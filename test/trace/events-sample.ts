// One event of every kind, with values that exercise varint widths, negative deltas and UTF-8.
import type { Event, TraceMeta } from '../../src/model/events.js';

export const meta: TraceMeta = { format: 1, clock: 'ns', startWallMs: 1700000000000, startMonoNs: '123456789012345', source: 'test', command: 'nginx -g "daemon off;"', hostname: 'h' };

const big = 2 ** 47 + 12345;

export const everyKind: Event[] = [
  { kind: 'process', pid: 100, t: 5, ppid: 1, command: 'nginx: master process', exe: '/usr/sbin/nginx' },
  { kind: 'module', pid: 100, t: 6, base: 0x55550000, size: 0x10000, offset: 0, path: '/usr/sbin/nginx', buildId: 'abcdef0123' },
  { kind: 'frame', pid: 100, t: 0, id: 1, frame: { pc: 0x7f00deadbeef, module: '/usr/lib/libc.so.6', fn: 'malloc', file: '', line: 0, inlined: false } },
  { kind: 'frame', pid: 100, t: 0, id: 2, frame: { pc: 0, module: '', fn: 'ngx_palloc', file: 'src/core/ngx_palloc.c', line: 131, inlined: true } },
  { kind: 'stack', pid: 100, t: 0, id: 1, parent: 0, frame: 2 },
  { kind: 'stack', pid: 100, t: 0, id: 2, parent: 1, frame: 1 },
  { kind: 'alloc', pid: 100, t: 1000, tid: 100, addr: big, size: 24, stack: 2 },
  { kind: 'alloc', pid: 100, t: 999, tid: 101, addr: big + 32, size: 2 ** 33, stack: 0 },
  { kind: 'realloc', pid: 100, t: 1001, tid: 101, oldAddr: big + 32, addr: big + 4096, size: 100, stack: 1 },
  { kind: 'free', pid: 100, t: 1002, tid: 100, addr: big },
  { kind: 'fork', pid: 101, t: 2000, parentPid: 100 },
  { kind: 'pool-create', pid: 101, t: 2001, tid: 101, pool: 0x1000, parent: 0, poolKind: 'nginx', tag: 'cycle', stack: 1 },
  { kind: 'pool-create', pid: 101, t: 2002, tid: 101, pool: 0x2000, parent: 0x1000, poolKind: 'apr', tag: 'requête ✓ 🚀', stack: 0 },
  { kind: 'pool-alloc', pid: 101, t: 2003, tid: 101, pool: 0x2000, size: 4000, addr: 0x2100, stack: 2 },
  { kind: 'pool-alloc', pid: 101, t: 2004, tid: 0, pool: 0x2000, size: 16, addr: 0, stack: 0 },
  { kind: 'pool-free', pid: 101, t: 2005, pool: 0x2000, addr: 0x2100 },
  { kind: 'pool-tag', pid: 101, t: 2006, pool: 0x2000, tag: 'r->pool' },
  { kind: 'pool-cleanup', pid: 101, t: 2007, pool: 0x2000, action: 'add', handler: 0x401000 },
  { kind: 'pool-cleanup', pid: 101, t: 2008, pool: 0x2000, action: 'run', handler: 0x401000 },
  { kind: 'pool-size', pid: 101, t: 2009, pool: 0x2000, bytes: 8192 },
  { kind: 'pool-found', pid: 101, t: 2009, pool: 0x3000, parent: 0x1000, poolKind: 'apr', tag: 'pchild' },
  { kind: 'pool-clear', pid: 101, t: 2010, pool: 0x2000, stack: 1 },
  { kind: 'pool-destroy', pid: 101, t: 2011, pool: 0x1000, stack: 2 },
  { kind: 'mmap', pid: 101, t: 2012, tid: 102, addr: 0x7f0000000000, size: 1 << 20, prot: 3, flags: 0x22, stack: 1 },
  { kind: 'munmap', pid: 101, t: 2013, addr: 0x7f0000000000, size: 1 << 20 },
  { kind: 'brk', pid: 101, t: 2014, addr: 0x5555_0000_1000 },
  { kind: 'shm', pid: 101, t: 2015, op: 'get', id: 7, addr: 0, size: 65536 },
  { kind: 'shm', pid: 101, t: 2016, op: 'attach', id: 7, addr: 0x7f1000000000, size: 65536 },
  { kind: 'shm', pid: 101, t: 2017, op: 'detach', id: 7, addr: 0x7f1000000000, size: 65536 },
  { kind: 'shm', pid: 101, t: 2018, op: 'remove', id: 7, addr: 0, size: 0 },
  { kind: 'rss', pid: 101, t: 3000, bytes: 123456789 },
  { kind: 'kernel', pid: 0, t: 3001, what: 'oom-kill', value: -5 },
  { kind: 'marker', pid: 0, t: 3002, label: 'after warm-up' },
  { kind: 'lost', pid: 101, t: 3003, count: 17, reason: 'ring buffer full' },
  { kind: 'exec', pid: 101, t: 3004, exe: '/bin/sh', command: 'sh -c true' },
  { kind: 'exit', pid: 101, t: 3005, code: -9 },
  { kind: 'exit', pid: 100, t: 2 ** 50, code: 0 },
];
