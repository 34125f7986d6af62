// Synthetic captures for the verdict corpus: event streams for shapes no real program here makes
// on demand (a clock's tick falling anywhere in a short program, a trace of 200,000 requests, an
// APR log without exit lines, traffic in bursts), and exact reproductions of captures that once
// got a wrong verdict. Each generator is seeded: the same seed gives the same events.

import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { StackInterner } from '../../src/model/stacks.js';
import { frame } from '../../src/model/events.js';
import type { Clock, Event } from '../../src/model/events.js';
import { rng } from '../support/rng.js';
import type { Case, Entity, Rule } from './entities.js';

const MS = 1e6;

/** A small event writer: processes, heap and pool calls, a clock that moves when told. */
export class Sim {
  readonly engine: Engine;
  private readonly st: StackInterner;
  t = 0;
  private nextAddr = 0x10000;

  constructor(clock: Clock = 'ns') {
    this.engine = new Engine({ meta: { format: 1, clock, source: 'synthetic' } });
    this.st = new StackInterner(this.engine);
  }

  ev(e: Event): void {
    this.engine.event(e);
  }

  /** A stack of named functions, leaf first (the allocator's own frame added at the leaf). */
  stack(pid: number, fns: string[], leaf = 'malloc'): number {
    return this.st.stackId([frame({ fn: leaf }), ...fns.map((f) => {
      const [fn, file, line] = f.split(':');
      return frame({ fn, file: file ?? '', line: Number(line ?? 0) });
    })], pid);
  }

  process(pid: number, ppid: number, command: string): void {
    this.ev({ kind: 'process', pid, t: this.t, ppid, command, exe: `/usr/sbin/${command.split(' ')[0]}` });
  }

  fork(pid: number, parentPid: number): void {
    this.ev({ kind: 'fork', pid, t: this.t, parentPid });
  }

  exit(pid: number, code = 0): void {
    this.ev({ kind: 'exit', pid, t: this.t, code });
  }

  alloc(pid: number, size: number, stack: number): number {
    const addr = (this.nextAddr += 0x10000);
    this.ev({ kind: 'alloc', pid, t: this.t, tid: pid, addr, size, stack });
    return addr;
  }

  free(pid: number, addr: number): void {
    this.ev({ kind: 'free', pid, t: this.t, tid: pid, addr });
  }

  poolCreate(pid: number, pool: number, parent: number, tag: string, stack = 0, kind = 'apr'): void {
    this.ev({ kind: 'pool-create', pid, t: this.t, tid: pid, pool, parent, poolKind: kind, tag, stack });
  }

  poolAlloc(pid: number, pool: number, size: number, stack = 0): void {
    this.ev({ kind: 'pool-alloc', pid, t: this.t, tid: pid, pool, size, addr: 0, stack });
  }

  poolClear(pid: number, pool: number): void {
    this.ev({ kind: 'pool-clear', pid, t: this.t, pool, stack: 0 });
  }

  poolDestroy(pid: number, pool: number): void {
    this.ev({ kind: 'pool-destroy', pid, t: this.t, pool, stack: 0 });
  }

  result(): AnalysisResult {
    return analyze(this.engine.finish(), { source: 'synthetic' });
  }
}

const is = (kind: Entity['kind'], name?: string | RegExp) => (e: Entity): boolean => {
  if (e.kind !== kind) return false;
  if (name === undefined) return true;
  const n = e.cls?.name ?? e.pool?.tag ?? e.site?.label ?? '';
  return typeof name === 'string' ? n === name || n.startsWith(`${name} (`) : name.test(n);
};
const pid = (p: number) => (e: Entity): boolean => e.proc.pid === p;
const any = () => true;
const rule = (test: (e: Entity) => boolean, label: Rule['label'], why: string): Rule => ({ test, label, why });

/**
 * A short program under `run` on a coarse clock (the recorder's ~4 ms tick): 1,000 blocks of
 * 64 B kept in a loop that takes ~3 ms, then exit. Where the tick falls (the phase) is chance.
 */
export function shortProgram(phase: number): AnalysisResult {
  const s = new Sim();
  const TICK = 4 * MS;
  const at = (ns: number) => Math.floor((ns + phase) / TICK) * TICK;
  s.t = at(0);
  s.process(1, 0, 'loop64');
  const init = s.stack(1, ['_IO_file_doallocate', 'main']);
  const keep = s.stack(1, ['keep:loop64.c:3', 'main:loop64.c:4']);
  s.alloc(1, 1024, init);
  const start = 1.2 * MS; // the dynamic loader and libc start-up
  for (let i = 0; i < 1000; i++) {
    s.t = at(start + i * 3000); // 3 µs a block
    s.alloc(1, 64, keep);
  }
  s.t = at(start + 1000 * 3000 + 0.4 * MS);
  s.exit(1);
  return s.result();
}

/** httpd's start-up process in an APR log (no exit line): it parses the configuration into pconf,
 *  forks the parent and is never heard from again; the parent forks a child that serves. */
function aprLauncher(): AnalysisResult {
  const s = new Sim('seq');
  const tick = () => void s.t++;
  s.process(10, 1, 'httpd');
  s.poolCreate(10, 0xa0, 0, 'pconf');
  s.poolCreate(10, 0xb0, 0xa0, 'ptemp');
  for (let i = 0; i < 400; i++) {
    tick();
    s.poolAlloc(10, 0xa0, 24 + (i % 9) * 8, s.stack(10, [`ap_build_config:config.c:${100 + (i % 5)}`]));
    if (i % 4 === 0) s.poolAlloc(10, 0xb0, 64, s.stack(10, ['ap_pcfg_openfile:util.c:808']));
  }
  tick();
  s.fork(11, 10);
  // The parent: its own copy of the configuration, then children, then quiet.
  for (let i = 0; i < 300; i++) {
    tick();
    s.poolAlloc(11, 0xa0, 32, s.stack(11, [`ap_build_config:config.c:${100 + (i % 5)}`]));
  }
  tick();
  s.fork(12, 11);
  s.poolCreate(12, 0xc0, 0xa0, 'pchild');
  s.poolCreate(12, 0xd0, 0xc0, 'transaction');
  for (let c = 0; c < 300; c++) {
    for (let k = 0; k < 4; k++) {
      tick();
      s.poolAlloc(12, 0xd0, 200, s.stack(12, ['ap_read_request:protocol.c:1000']));
    }
    tick();
    s.poolClear(12, 0xd0);
  }
  return s.result();
}

/**
 * A connection pool cleared after each connection; one connection streams 200 chunks (a brigade
 * and a string each); afterwards short connections again, and the trace ends inside one of them.
 */
function perConnectionStream(): AnalysisResult {
  const s = new Sim();
  const r = rng(5);
  s.process(20, 1, 'httpd child');
  s.poolCreate(20, 0x1, 0, 'pchild');
  s.poolCreate(20, 0x2, 0x1, 'transaction');
  const read = s.stack(20, ['ap_read_request:protocol.c:1000']);
  const chunk = s.stack(20, ['stream_chunk:mod_stream.c:40']);
  const conn = (allocs: number, size: () => number, site: number, close = true) => {
    for (let k = 0; k < allocs; k++) {
      s.t += (site === chunk ? 20 : 2) * MS;
      s.poolAlloc(20, 0x2, size(), site);
      // a request pool per request, created and destroyed inside the connection
      s.poolCreate(20, 0x3, 0x2, 'request');
      s.poolAlloc(20, 0x3, 800 + Math.floor(r() * 400), read);
      s.poolDestroy(20, 0x3);
    }
    if (close) {
      s.t += MS;
      s.poolClear(20, 0x2);
    }
  };
  for (let c = 0; c < 80; c++) conn(3, () => 300 + Math.floor(r() * 200), read);
  conn(200, () => 600, chunk);
  for (let c = 0; c < 40; c++) conn(3, () => 300 + Math.floor(r() * 200), read);
  conn(2, () => 400, read, false);
  return s.result();
}

/**
 * nginx's cycle pool (a 16 KiB block each time it needs room): three blocks at start-up, requests
 * for a long time, and late two more blocks, from another caller, never released. The site's
 * label is the same for both callers (the first frame that matters), so one site holds all five.
 */
function lateCyclePool(): AnalysisResult {
  const s = new Sim();
  s.process(30, 29, 'nginx: worker process');
  s.poolCreate(30, 0xc1, 0, '', s.stack(30, ['ngx_init_cycle:ngx_cycle.c:80']), 'nginx');
  // Both callers go through one helper that matters: one site, two stacks.
  const early = s.stack(30, ['ngx_palloc_block:ngx_palloc.c:190', 'ngx_cycle_alloc:ngx_cycle.c:40', 'ngx_init_cycle:ngx_cycle.c:300'], 'posix_memalign');
  const late = s.stack(30, ['ngx_palloc_block:ngx_palloc.c:190', 'ngx_cycle_alloc:ngx_cycle.c:40', 'ngx_http_lua_ffi_compile_regex:ngx_http_lua_regex.c:400'], 'posix_memalign');
  const req = s.stack(30, ['ngx_http_create_request:ngx_http_request.c:500'], 'ngx_create_pool');
  for (let i = 0; i < 3; i++) {
    s.t += MS;
    s.poolAlloc(30, 0xc1, 16384, early);
  }
  for (let i = 0; i < 2000; i++) {
    s.t += 5 * MS;
    s.poolCreate(30, 0x900, 0, '', req, 'nginx');
    s.poolAlloc(30, 0x900, 1024 + (i % 7) * 128, req);
    s.poolDestroy(30, 0x900);
    if (i === 1700 || i === 1850) s.poolAlloc(30, 0xc1, 16384, late);
  }
  return s.result();
}

/** A leak in bursts of traffic with long idle gaps between them (a batch job, office hours). */
function burstyLeak(): AnalysisResult {
  const s = new Sim();
  const r = rng(9);
  s.process(40, 1, 'bursty');
  const leak = s.stack(40, ['session_new:sessions.c:77']);
  const work = s.stack(40, ['handle:server.c:120']);
  for (let b = 0; b < 5; b++) {
    for (let i = 0; i < 120; i++) {
      s.t += 2 * MS;
      const a = s.alloc(40, 512 + Math.floor(r() * 8192), work);
      if (i % 3 === 0) s.alloc(40, 160, leak);
      s.free(40, a);
    }
    s.t += 3000 * MS; // idle
  }
  return s.result();
}

/** 200,000 requests (the series merge many changes per point); 16 B kept in one request of 50,
 *  under churn of up to 32 KiB in flight. */
function longSlowLeak(): AnalysisResult {
  const s = new Sim();
  const r = rng(13);
  s.process(50, 1, 'long');
  const leak = s.stack(50, ['intern_string:strings.c:12']);
  const work = s.stack(50, ['parse:parser.c:300']);
  const inflight: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    s.t += MS;
    inflight.push(s.alloc(50, 1024 + Math.floor(r() * 7168), work));
    if (inflight.length > 4 || r() < 0.3) s.free(50, inflight.splice(Math.floor(r() * inflight.length), 1)[0]!);
    if (i % 50 === 0) s.alloc(50, 16, leak);
  }
  return s.result();
}

/** Start-up builds a 2 MiB table in its first tenth, then the server serves churn. */
function startupThenFlat(): AnalysisResult {
  const s = new Sim();
  const r = rng(17);
  s.process(60, 1, 'server');
  const cfg = s.stack(60, ['load_config:config.c:55']);
  const work = s.stack(60, ['handle:server.c:120']);
  for (let i = 0; i < 512; i++) {
    s.t += 0.1 * MS;
    s.alloc(60, 4096, cfg);
  }
  for (let i = 0; i < 3000; i++) {
    s.t += 2 * MS;
    const a = s.alloc(60, 256 + Math.floor(r() * 4096), work);
    s.free(60, a);
  }
  return s.result();
}

/** A buffer flushed every 25 requests, 500 requests: twenty teeth, each like the first. */
function manyTeeth(): AnalysisResult {
  const s = new Sim();
  s.process(70, 1, 'batcher');
  const add = s.stack(70, ['batch_add:batch.c:20']);
  let held: number[] = [];
  for (let i = 0; i < 500; i++) {
    s.t += 2 * MS;
    held.push(s.alloc(70, 1024, add));
    if (held.length === 25) {
      for (const a of held) s.free(70, a);
      held = [];
    }
  }
  return s.result();
}

/** A program that leaks a block every 10 ms for 10 s and exits without freeing anything. */
function exitedAfterLongLeak(): AnalysisResult {
  const s = new Sim();
  const r = rng(21);
  s.process(80, 1, 'worker');
  const leak = s.stack(80, ['cache_miss:cache.c:90']);
  const work = s.stack(80, ['handle:server.c:120']);
  for (let i = 0; i < 1000; i++) {
    s.t += 10 * MS;
    const a = s.alloc(80, 2000 + Math.floor(r() * 2000), work);
    s.alloc(80, 96, leak);
    s.free(80, a);
  }
  s.t += MS;
  s.exit(80);
  return s.result();
}

/** Churn for four fifths of the run, then a leak in every request for the last fifth. */
function lateStartingLeak(): AnalysisResult {
  const s = new Sim();
  const r = rng(23);
  s.process(90, 1, 'server');
  const leak = s.stack(90, ['session_new:sessions.c:77']);
  const work = s.stack(90, ['handle:server.c:120']);
  for (let i = 0; i < 5000; i++) {
    s.t += MS;
    const a = s.alloc(90, 512 + Math.floor(r() * 4096), work);
    if (i >= 4000) s.alloc(90, 64, leak);
    s.free(90, a);
  }
  return s.result();
}

const sync = (f: () => AnalysisResult) => () => Promise.resolve(f());

export const SYNTHETIC: Case[] = [
  {
    name: 'syn-short-program', source: 'synthetic', what: "a short program on the recorder's 4 ms clock: 1,000 blocks of 64 B kept in a 3 ms loop, then exit (the tick's phase 1.7 ms; the test tries ten phases)", load: sync(() => shortProgram(1.7 * MS)),
    rules: [rule(any, 'unfreed', 'a short program that exits holding what it allocated: a fact, not a trend (its life is one or two clock ticks)')],
  },
  {
    name: 'syn-apr-launcher', source: 'synthetic', what: "an APR pool-debug log without exit lines: httpd's start-up process fills pconf, forks the parent and is never heard from again; the parent forks a child whose connection pool is cleared after each of 300 connections", load: sync(aprLauncher),
    rules: [
      rule(pid(10), 'steady', "httpd's start-up process: all it did was parse the configuration before forking the parent"),
      rule(pid(11), 'steady', 'the parent: its own configuration at start-up, then quiet'),
      rule(pid(12), 'steady', 'the child: a connection pool cleared after each connection'),
    ],
  },
  {
    name: 'syn-stream-connection', source: 'synthetic', what: 'an httpd child: 80 short connections, one stream of 200 chunks of 600 B (one every 20 ms) on one connection, 40 short ones, the trace ending inside one; the connection pool cleared after each, a request pool per request', load: sync(perConnectionStream),
    rules: [
      rule(is('class', 'request'), 'steady', 'request pools: created and destroyed in every request'),
      rule(is('class', 'pchild'), 'steady', 'the child pool is never used'),
      rule(is('pool', 'pchild'), 'steady', 'the child pool is never used'),
      rule(is('site', /^ap_read_request/), 'steady', 'request reading: a few hundred bytes per request, cleared with the connection'),
      rule(any, 'bounded', 'the connection pool grows during one long stream and is cleared when the connection ends'),
    ],
  },
  {
    name: 'syn-late-cycle-pool', source: 'synthetic', what: 'an nginx worker: three 16 KiB blocks of its cycle pool at start-up, 2,000 requests, two more 16 KiB blocks late (from another caller, one site) never released', load: sync(lateCyclePool),
    rules: [
      rule(is('class', /ngx_http_create_request/), 'steady', 'request pools: created and destroyed per request'),
      rule(any, 'growing', 'the cycle pool gains two 16 KiB blocks late and keeps them: too few to call a leak, too many to call steady'),
    ],
  },
  {
    name: 'syn-bursty-leak', source: 'synthetic', what: 'a session kept in every third request, traffic in five bursts with long idle gaps', load: sync(burstyLeak),
    rules: [rule(is('site', /^handle/), 'steady', 'per-request buffers, freed at once'), rule(any, 'leak', 'a session kept per third request, in five bursts of traffic with idle gaps')],
  },
  {
    name: 'syn-long-slow-leak', source: 'synthetic', what: '200,000 requests (many changes per series point): 16 B kept in one request of 50', load: sync(longSlowLeak),
    rules: [rule(is('site', /^parse/), 'steady', 'buffers in flight, at most a few at a time'), rule(any, 'leak', '16 B kept in one request of 50 over 200,000 requests')],
  },
  {
    name: 'syn-startup-then-flat', source: 'synthetic', what: 'a 2 MiB table built in the first tenth, then churn only', load: sync(startupThenFlat),
    rules: [rule(any, 'steady', 'a 2 MiB table built in the first tenth, then only churn')],
  },
  {
    name: 'syn-many-teeth', source: 'synthetic', what: 'a buffer flushed every 25 requests over 500 requests: twenty teeth alike', load: sync(manyTeeth),
    rules: [rule(any, 'steady', 'a buffer flushed every 25 requests: twenty teeth, each like the first')],
  },
  {
    name: 'syn-exited-long-leak', source: 'synthetic', what: 'a block kept every 10 ms for 10 s, then exit without freeing', load: sync(exitedAfterLongLeak),
    rules: [rule(is('site', /^handle/), 'steady', 'per-request buffers, freed at once'), rule(any, 'unfreed', 'a block kept every 10 ms for 10 s, then exit without freeing: not freed at exit (the trend while it ran, a leak)')],
  },
  {
    name: 'syn-late-starting-leak', source: 'synthetic', what: 'churn for four fifths of 5,000 requests, then 64 B kept per request', load: sync(lateStartingLeak),
    rules: [rule(is('site', /^handle/), 'steady', 'per-request buffers, freed at once'), rule(any, 'leak', 'churn only, then 64 B kept per request for the last fifth of the run (1,000 requests)')],
  },
];
