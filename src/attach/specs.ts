// Compiles allocator profiles into the loader's probe specs (struct ls_spec in
// native/bpf/src/ls_event.h) and the `spec` command lines that set them. Only numbers reach
// the loader: no user text is ever part of a program.

import type { AllocatorProfile, PoolList, ProfileFunction, Role, ValueSource } from './profile.js';

export const F_ENTRY_EMIT = 1;
export const F_STACK = 2;
export const F_WALK_RET = 4;
export const F_RET_ONLY = 8;
const SRC_RET = 6;
const SRC_DEREF = 7;
const SRC_NONE = 15;
const ROLE_ALLOC = 1;
const ROLE_FREE = 2;
const ROLE_REALLOC = 3;
const ROLE_OTHER = 4;
export const MAX_SPECS = 64;

export interface ProbeSpec {
  index: number;
  profile: AllocatorProfile;
  fn: ProfileFunction;
  flags: number;
  /** The argument read through after return (`*argN`), or -1. */
  derefArg: number;
  /** `spec` command fields after the word `spec`. */
  fields: number[];
}

function srcCode(s: ValueSource | undefined): number {
  if (s === undefined) return SRC_NONE;
  if (s === 'ret') return SRC_RET;
  if (s.startsWith('*')) return SRC_DEREF;
  return Number(s.slice(3));
}

function argIndex(s: ValueSource | undefined): number {
  if (!s || s === 'ret') return -1;
  return Number(s.replace('*', '').slice(3));
}

function sourcesOf(fn: ProfileFunction): ValueSource[] {
  const out: ValueSource[] = [];
  for (const v of [fn.addr, fn.old, fn.pool, fn.parent, fn.tag, ...(Array.isArray(fn.size) ? fn.size : [fn.size])]) if (v) out.push(v);
  return out;
}

const STACK_ROLES: Role[] = ['alloc', 'realloc', 'pool-create', 'pool-alloc'];

function walkFields(l: PoolList | undefined): number[] {
  if (!l) return [-1, 0, 0, -1, -1, 0];
  return [l.first.offset, l.first.deref ? 1 : 0, l.next, l.end ?? -1, l.mallocPtr ?? -1, l.ring ? 1 : 0];
}

/** The values the session reads from a call in events mode: a pool's creation size is not one
 *  (its size comes from walking the new pool); aggregate mode counts `size` for it. */
function eventSources(fn: ProfileFunction): ValueSource[] {
  const size = fn.role === 'pool-create' ? undefined : fn.size;
  const out: ValueSource[] = [];
  for (const v of [fn.addr, fn.old, fn.pool, fn.parent, fn.tag, ...(Array.isArray(size) ? size : [size])]) if (v) out.push(v);
  return out;
}

/** Whether a profile function is probed at this level. */
function probed(fn: ProfileFunction, poolAllocs: boolean): boolean {
  return (fn.level ?? 'default') !== 'pool-allocs' || poolAllocs;
}

/**
 * Where a pool holds its tag, when the tags are read from the pools instead of probed: the
 * profile says where (`discover.tag`) and its tagging function is not probed at this level (APR's
 * apr_pool_tag is one store, which the kernel single-steps: a second trap per call). Destroy and
 * clear probes then read the tag, and the pools' samples read it for live pools; -1 otherwise.
 */
export function tagFromPool(profile: AllocatorProfile, poolAllocs: boolean): number {
  const off = profile.discover?.tag;
  if (off === undefined) return -1;
  return profile.functions.some((f) => f.role === 'pool-tag' && probed(f, poolAllocs)) ? -1 : off;
}

/** The specs for these profiles; `poolAllocs` adds the functions of level `pool-allocs`. */
export function compileSpecs(profiles: AllocatorProfile[], opts: { poolAllocs: boolean; mode?: 'events' | 'aggregate' }): ProbeSpec[] {
  const out: ProbeSpec[] = [];
  for (const profile of profiles) {
    for (const fn of profile.functions) {
      if (!probed(fn, opts.poolAllocs)) continue;
      if (out.length >= MAX_SPECS) break;
      const srcs = sourcesOf(fn);
      const derefs = [...new Set(srcs.filter((s) => s.startsWith('*')))];
      if (derefs.length > 1) throw new Error(`${profile.name}: ${fn.symbol} reads through two arguments; one is supported`);
      const needsReturn = srcs.some((s) => s === 'ret' || s.startsWith('*')) || fn.okIfRetZero === true;
      const stack = fn.stack ?? STACK_ROLES.includes(fn.role);
      let flags = needsReturn ? 0 : F_ENTRY_EMIT;
      // a return probe alone when no argument is read: one BPF program per call, not two
      const used = opts.mode === 'aggregate' ? srcs : eventSources(fn);
      if (needsReturn && used.every((s) => s === 'ret')) flags |= F_RET_ONLY;
      if (stack) flags |= F_STACK;
      const derefArg = derefs.length ? argIndex(derefs[0]) : -1;
      const strArg = fn.tag ? argIndex(fn.tag) : -1;
      // destroy/clear: the pool's size as it goes; create: its first size, read from the new pool
      const measuresArg = (fn.role === 'pool-destroy' || fn.role === 'pool-clear') && profile.poolSize !== undefined;
      const measuresNew = fn.role === 'pool-create' && profile.poolSize !== undefined && fn.pool !== undefined && (fn.pool === 'ret' || fn.pool.startsWith('*'));
      const measures = measuresArg || measuresNew;
      const walkArg = measuresArg ? argIndex(fn.pool) : measuresNew ? 0 : -1;
      if (measuresNew) flags |= F_WALK_RET;
      const size = Array.isArray(fn.size) ? fn.size[0] : fn.size;
      let role = ROLE_OTHER;
      let addr = SRC_NONE;
      let sizeSrc = SRC_NONE;
      let old = SRC_NONE;
      if (fn.role === 'alloc') [role, addr, sizeSrc] = [ROLE_ALLOC, srcCode(fn.addr), srcCode(size)];
      else if (fn.role === 'free') [role, addr] = [ROLE_FREE, srcCode(fn.addr)];
      else if (fn.role === 'realloc') [role, addr, sizeSrc, old] = [ROLE_REALLOC, srcCode(fn.addr), srcCode(size), srcCode(fn.old)];
      else if (fn.role === 'pool-create') [role, addr, sizeSrc] = [ROLE_ALLOC, srcCode(fn.pool), srcCode(size)];
      else if (fn.role === 'pool-destroy') [role, addr] = [ROLE_FREE, srcCode(fn.pool)];
      const lists = profile.poolSize?.lists ?? [];
      const tagOff = measuresArg && strArg < 0 ? tagFromPool(profile, opts.poolAllocs) : -1;
      const fields = [out.length, flags, role, addr, sizeSrc, old, derefArg, strArg, walkArg, ...walkFields(measures ? lists[0] : undefined), ...walkFields(measures ? lists[1] : undefined), tagOff];
      out.push({ index: out.length, profile, fn, flags, derefArg, fields });
    }
  }
  return out;
}

/** The `spec` command line for the loader (TAB-separated numbers). */
export function specLine(s: ProbeSpec): string {
  return ['spec', ...s.fields].join('\t');
}
