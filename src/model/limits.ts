// What a value of an event may be. Numbers in an input are claims, not facts: a trace or log can
// say 2^64, -1 or 1e30 anywhere. The input layer drops (and counts) every event with a value
// outside these ranges, so that no report prints "-8192 TiB" or "Process 1e+30", no sum loses
// its precision and every event can be written to a trace again.

import type { Event } from './events.js';

/** Largest size of one allocation, mapping, pool or RSS: 1 PiB, beyond any process's memory
 *  (and small enough that sums of many stay exact in a double). */
export const MAX_SIZE = 2 ** 50;
/** Process and thread ids are a pid_t. */
export const MAX_PID = 2 ** 31 - 1;
/** Times (ns or sequence numbers): 2^52 ns is 52 days, and a trace's time deltas stay exact. */
export const MAX_TIME = 2 ** 52;

const MAX_UINT = Number.MAX_SAFE_INTEGER;

/** A number as the input wrote it (1000000000000000000000, not 1e+21): for any text that quotes
 *  a number read from an input, which no range check has vetted. */
export function showNumber(v: number): string {
  return Number.isInteger(v) ? BigInt(v).toString() : String(v);
}

/** A whole number in [0, max]. */
function u(v: number, max = MAX_UINT): boolean {
  return v >= 0 && v <= max && Math.floor(v) === v;
}

/** Why an event's values are out of range (the first one found), or undefined when they are fine. */
export function outOfRange(e: Event): string | undefined {
  if (!u(e.pid, MAX_PID)) return `pid ${showNumber(e.pid)}`;
  if (!(Math.abs(e.t) <= MAX_TIME && Math.floor(e.t) === e.t)) return `time ${showNumber(e.t)}`;
  switch (e.kind) {
    case 'alloc':
      return !u(e.addr) ? `address ${showNumber(e.addr)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : !u(e.stack) ? `stack ${showNumber(e.stack)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'free':
      return !u(e.addr) ? `address ${showNumber(e.addr)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'realloc':
      return !u(e.addr) || !u(e.oldAddr) ? `address ${showNumber(e.addr)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : !u(e.stack) ? `stack ${showNumber(e.stack)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'pool-create':
      return !u(e.pool) || !u(e.parent) ? `pool address ${showNumber(e.pool)}` : !u(e.stack) ? `stack ${showNumber(e.stack)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'pool-destroy':
    case 'pool-clear':
      return !u(e.pool) ? `pool address ${showNumber(e.pool)}` : !u(e.stack) ? `stack ${showNumber(e.stack)}` : undefined;
    case 'pool-alloc':
      return !u(e.pool) || !u(e.addr) ? `pool address ${showNumber(e.pool)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : !u(e.stack) ? `stack ${showNumber(e.stack)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'pool-free':
      return !u(e.pool) || !u(e.addr) ? `pool address ${showNumber(e.pool)}` : undefined;
    case 'pool-tag':
      return !u(e.pool) ? `pool address ${showNumber(e.pool)}` : undefined;
    case 'pool-cleanup':
      return !u(e.pool) || !u(e.handler) ? `pool address ${showNumber(e.pool)}` : undefined;
    case 'pool-size':
      return !u(e.pool) ? `pool address ${showNumber(e.pool)}` : !u(e.bytes, MAX_SIZE) ? `size ${showNumber(e.bytes)}` : undefined;
    case 'process':
      return !u(e.ppid, MAX_PID) ? `parent pid ${showNumber(e.ppid)}` : undefined;
    case 'fork':
      return !u(e.parentPid, MAX_PID) ? `parent pid ${showNumber(e.parentPid)}` : undefined;
    case 'exit':
      return Number.isSafeInteger(e.code) ? undefined : `exit code ${showNumber(e.code)}`;
    case 'mmap':
      return !u(e.addr) ? `address ${showNumber(e.addr)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : !u(e.prot) || !u(e.flags) ? 'flags' : !u(e.stack) ? `stack ${showNumber(e.stack)}` : !u(e.tid, MAX_PID) ? `thread ${showNumber(e.tid)}` : undefined;
    case 'munmap':
      return !u(e.addr) ? `address ${showNumber(e.addr)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : undefined;
    case 'brk':
      return !u(e.addr) ? `address ${showNumber(e.addr)}` : undefined;
    case 'shm':
      return !u(e.addr) || !u(e.id) ? `address ${showNumber(e.addr)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : undefined;
    case 'rss':
      return !u(e.bytes, MAX_SIZE) ? `RSS ${showNumber(e.bytes)}` : undefined;
    case 'kernel':
      return Number.isSafeInteger(e.value) ? undefined : `value ${showNumber(e.value)}`;
    case 'lost':
      return !u(e.count) ? `count ${showNumber(e.count)}` : undefined;
    case 'module':
      return !u(e.base) || !u(e.offset) ? `address ${showNumber(e.base)}` : !u(e.size, MAX_SIZE) ? `size ${showNumber(e.size)}` : undefined;
    case 'frame':
      return !u(e.id) ? `frame id ${showNumber(e.id)}` : !u(e.frame.pc) || !u(e.frame.line) || (e.frame.vaddr !== undefined && !u(e.frame.vaddr)) ? `frame ${showNumber(e.id)}` : undefined;
    case 'stack':
      return !u(e.id) || !u(e.parent) || !u(e.frame) ? `stack ${showNumber(e.id)}` : undefined;
    default:
      return undefined;
  }
}

/** The same check for the fast path's calls (addresses, size, stack, thread of one event). */
export function fastOutOfRange(pid: number, tid: number, t: number, a: number, b: number, size: number, stack: number): string | undefined {
  if (!u(pid, MAX_PID)) return `pid ${showNumber(pid)}`;
  if (!(Math.abs(t) <= MAX_TIME && Math.floor(t) === t)) return `time ${showNumber(t)}`;
  if (!u(a) || !u(b)) return `address ${u(a) ? b : a}`;
  if (!u(size, MAX_SIZE)) return `size ${showNumber(size)}`;
  if (!u(stack)) return `stack ${showNumber(stack)}`;
  if (!u(tid, MAX_PID)) return `thread ${showNumber(tid)}`;
  return undefined;
}
