// Allocator profiles: data files (profiles/allocators/<name>.json) that say which functions to
// probe, what each one means (its role) and where its values are (an argument, the return
// value, or *argN after return). The loader stays generic; this file validates a profile and
// compiles it into the BPF side's specs (native/bpf/src/ls_event.h).

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { packagePath } from '../native/locate.js';

export const ROLES = ['alloc', 'free', 'realloc', 'pool-create', 'pool-destroy', 'pool-clear', 'pool-alloc', 'pool-free', 'pool-tag'] as const;
export type Role = (typeof ROLES)[number];
/** Roles whose every call is an allocation event (as opposed to a pool's lifecycle). */
const PER_CALL_ROLES: ReadonlySet<Role> = new Set<Role>(['alloc', 'free', 'realloc', 'pool-alloc', 'pool-free']);

/** Whether the probes these profiles attach report every allocation call (the malloc family,
 *  pool allocations) rather than only pools' lifecycles. */
export function eventPerCall(profiles: AllocatorProfile[], poolAllocs: boolean): boolean {
  return profiles.some((p) => p.functions.some((f) => PER_CALL_ROLES.has(f.role) && (f.level !== 'pool-allocs' || poolAllocs)));
}

/** Where a value comes from: `arg0`..`arg5`, `ret`, or `*argN` (the word argN points to, read after return). */
export type ValueSource = string;

export interface ProfileFunction {
  symbol: string;
  /** `exe` (the target's executable) or a library file name prefix (`libc.so.6`, `libapr-1.so`). */
  in: string;
  role: Role;
  addr?: ValueSource;
  /** One source, or several multiplied (calloc: ["arg0", "arg1"]). */
  size?: ValueSource | ValueSource[];
  /** realloc: the old block. */
  old?: ValueSource;
  pool?: ValueSource;
  parent?: ValueSource;
  /** A NUL-terminated string argument (pool tags). */
  tag?: ValueSource;
  /** The call failed unless the return value is 0 (posix_memalign). */
  okIfRetZero?: boolean;
  /** `default` (always probed) or `pool-allocs` (only with --pool-allocs). */
  level?: 'default' | 'pool-allocs';
  /** Capture a stack for this call (default: true for alloc, realloc, pool-create, pool-alloc). */
  stack?: boolean;
}

/** One linked list (or ring) of memory blocks reachable from a pool. */
export interface PoolList {
  /** The first node: `pool + offset`, or the pointer stored there when `deref`. */
  first: { offset: number; deref: boolean };
  /** Offset of the next-node pointer in a node. */
  next: number;
  /** A node spans [node, *(node + end)): its capacity counts. */
  end?: number;
  /** A node points at a malloc'd block at this offset: the block's size counts (glibc chunk header). */
  mallocPtr?: number;
  /** The list is circular (APR's active ring). */
  ring?: boolean;
}

/** A place pools are found from: the address of a global symbol, followed through `path` (each
 *  step reads the 64-bit word at address + step); the result is a pool. With `array`, the same
 *  kind of path leads to an array of structs, each of which may point at a pool. */
export interface DiscoveryRoot {
  /** What these pools are (`cycle`, `connection`): their tag when they have none of their own. */
  name: string;
  symbol: string;
  /** `exe` or a library file name prefix, as in `functions[].in`. */
  in: string;
  path?: number[];
  array?: {
    /** To the first element, and to the element count (a 64-bit word). */
    path: number[];
    count: number[];
    stride: number;
    /** Offset of the pool pointer in an element (null: no pool). */
    pool: number;
    /** Elements whose signed 32-bit value at `offset` is `i32` are not in use (a closed connection's fd -1). */
    skip?: { offset: number; i32: number };
  };
}

/** How to find the pools alive before the trace began (attach's discovery walk). */
export interface PoolDiscovery {
  /** Offsets of the tree links in a pool, when pools form a tree (APR): parent, first child, next
   *  sibling, and `backref`, the address of the link pointing at this pool (*backref == pool):
   *  a pool is taken only when its links agree. */
  tree?: { parent: number; child: number; sibling: number; backref?: number };
  /** Offset of the pool's tag (a pointer to a NUL-terminated string). */
  tag?: number;
  /** What every pool's own memory must satisfy: the word at pool + offset, minus the pool's
   *  address, is within [min, max] (signed). Memory that fails is not taken for a pool. */
  sane?: { offset: number; min: number; max: number }[];
  roots?: DiscoveryRoot[];
  /** The layout as the allocator's own code shows it: a function's first bytes (hex), checked
   *  against the target's by `doctor` (`says` tells what they prove). */
  checks?: { symbol: string; in: string; code: string; says: string }[];
}

export interface AllocatorProfile {
  name: string;
  description?: string;
  /** Pool family for pool-create events ('nginx', 'apr', or the profile's own). */
  poolKind?: string;
  /** Chosen automatically when these symbols are defined where `in` says. */
  detect?: { in: string; symbols: string[]; priority?: number };
  functions: ProfileFunction[];
  /** How to read a pool's size from its own structure (at destroy/clear, and for live pools). */
  poolSize?: { lists: PoolList[] };
  /** How to find the pools that were alive before the trace began. */
  discover?: PoolDiscovery;
  /** Profiles combined with this one (an nginx target also gets libc when asked). */
  file?: string;
  /** Which tracer runs it: the generic uprobe loader (default) or a dedicated one ('luajit'). */
  engine?: 'uprobes' | 'luajit';
}

const SRC_RE = /^(arg[0-5]|ret|\*arg[0-5])$/;

function fail(file: string, msg: string): never {
  throw new UserError(`allocator profile ${file}: ${msg}`);
}

function checkSource(file: string, where: string, v: unknown): void {
  if (v === undefined) return;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > 2) fail(file, `${where}: expected a source or a list of two`);
  for (const s of list) if (typeof s !== 'string' || !SRC_RE.test(s)) fail(file, `${where}: "${String(s)}" is not arg0..arg5, ret or *argN`);
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** Validates a parsed profile; throws a UserError naming the file and the problem. */
export function validateProfile(raw: unknown, file: string): AllocatorProfile {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(file, 'expected a JSON object');
  const p = raw as Record<string, unknown>;
  if (typeof p.name !== 'string' || !/^[A-Za-z0-9_.-]{1,40}$/.test(p.name)) fail(file, '"name" must be 1-40 letters, digits, _ . -');
  if (!Array.isArray(p.functions) || p.functions.length === 0) fail(file, '"functions" must be a non-empty list');
  if (p.functions.length > 48) fail(file, 'at most 48 functions');
  const seen = new Set<string>();
  for (const [i, f0] of (p.functions as unknown[]).entries()) {
    const where = `functions[${i}]`;
    if (!f0 || typeof f0 !== 'object') fail(file, `${where}: expected an object`);
    const f = f0 as Record<string, unknown>;
    if (typeof f.symbol !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.@]{0,200}$/.test(f.symbol)) fail(file, `${where}: "symbol" must be a C symbol name`);
    if (typeof f.in !== 'string' || !/^(exe|[A-Za-z0-9_.+-]{1,100})$/.test(f.in)) fail(file, `${where}: "in" must be "exe" or a library file name`);
    if (!ROLES.includes(f.role as Role)) fail(file, `${where}: "role" must be one of ${ROLES.join(', ')}`);
    for (const k of ['addr', 'size', 'old', 'pool', 'parent', 'tag']) checkSource(file, `${where}.${k}`, f[k]);
    if (f.level !== undefined && f.level !== 'default' && f.level !== 'pool-allocs') fail(file, `${where}: "level" must be "default" or "pool-allocs"`);
    const role = f.role as Role;
    const need: Record<Role, string[]> = {
      alloc: ['addr', 'size'], free: ['addr'], realloc: ['old', 'addr', 'size'], 'pool-create': ['pool'],
      'pool-destroy': ['pool'], 'pool-clear': ['pool'], 'pool-alloc': ['pool', 'size'], 'pool-free': ['pool', 'addr'], 'pool-tag': ['pool', 'tag'],
    };
    for (const k of need[role]) if (f[k] === undefined) fail(file, `${where}: role ${role} needs "${k}"`);
    const key = `${f.in}:${f.symbol}`;
    if (seen.has(key)) fail(file, `${where}: ${key} listed twice`);
    seen.add(key);
  }
  if (p.poolSize !== undefined) {
    const ps = p.poolSize as Record<string, unknown>;
    if (!ps || !Array.isArray(ps.lists) || ps.lists.length === 0 || ps.lists.length > 2) fail(file, '"poolSize.lists" must hold one or two lists');
    for (const [i, l0] of (ps.lists as unknown[]).entries()) {
      const l = (l0 ?? {}) as Record<string, unknown>;
      const first = (l.first ?? {}) as Record<string, unknown>;
      if (!isInt(first.offset, 0, 4096) || typeof first.deref !== 'boolean') fail(file, `poolSize.lists[${i}].first: needs "offset" (0-4096) and "deref" (true/false)`);
      if (!isInt(l.next, 0, 4096)) fail(file, `poolSize.lists[${i}].next: an offset 0-4096`);
      if (l.end !== undefined && !isInt(l.end, 0, 4096)) fail(file, `poolSize.lists[${i}].end: an offset 0-4096`);
      if (l.mallocPtr !== undefined && !isInt(l.mallocPtr, 0, 4096)) fail(file, `poolSize.lists[${i}].mallocPtr: an offset 0-4096`);
      if (l.end === undefined && l.mallocPtr === undefined) fail(file, `poolSize.lists[${i}]: needs "end" or "mallocPtr"`);
    }
  }
  if (p.discover !== undefined) validateDiscovery(file, p.discover);
  if (p.detect !== undefined) {
    const d = p.detect as Record<string, unknown>;
    if (typeof d.in !== 'string' || !Array.isArray(d.symbols) || !d.symbols.every((s) => typeof s === 'string')) fail(file, '"detect" needs "in" and "symbols"');
  }
  return { ...(p as unknown as AllocatorProfile), file };
}

function offsetList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length >= 1 && v.length <= 8 && v.every((x) => isInt(x, 0, 65536));
}

function validateDiscovery(file: string, raw: unknown): void {
  const where = (k: string) => `discover.${k}`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(file, '"discover" must be an object');
  const d = raw as Record<string, unknown>;
  if (d.tree !== undefined) {
    const t = (d.tree ?? {}) as Record<string, unknown>;
    for (const k of ['parent', 'child', 'sibling']) if (!isInt(t[k], 0, 4096)) fail(file, `${where('tree')}.${k}: an offset 0-4096`);
    if (t.backref !== undefined && !isInt(t.backref, 0, 4096)) fail(file, `${where('tree')}.backref: an offset 0-4096`);
  }
  if (d.tag !== undefined && !isInt(d.tag, 0, 4096)) fail(file, `${where('tag')}: an offset 0-4096`);
  if (d.sane !== undefined) {
    if (!Array.isArray(d.sane) || d.sane.length > 8) fail(file, `${where('sane')}: a list of at most 8 checks`);
    for (const [i, c0] of (d.sane as unknown[]).entries()) {
      const c = (c0 ?? {}) as Record<string, unknown>;
      if (!isInt(c.offset, 0, 4096) || !isInt(c.min, -(2 ** 32), 2 ** 32) || !isInt(c.max, -(2 ** 32), 2 ** 32) || (c.min as number) > (c.max as number)) {
        fail(file, `${where('sane')}[${i}]: needs "offset" (0-4096) and "min" <= "max"`);
      }
    }
  }
  if (d.roots !== undefined) {
    if (!Array.isArray(d.roots) || d.roots.length > 8) fail(file, `${where('roots')}: a list of at most 8 roots`);
    for (const [i, r0] of (d.roots as unknown[]).entries()) {
      const r = (r0 ?? {}) as Record<string, unknown>;
      const at = `${where('roots')}[${i}]`;
      if (typeof r.name !== 'string' || !/^[A-Za-z0-9_ .>-]{1,40}$/.test(r.name)) fail(file, `${at}.name: 1-40 letters, digits, spaces, _ . - >`);
      if (typeof r.symbol !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.]{0,200}$/.test(r.symbol)) fail(file, `${at}.symbol: a C symbol name`);
      if (typeof r.in !== 'string' || !/^(exe|[A-Za-z0-9_.+-]{1,100})$/.test(r.in)) fail(file, `${at}.in: "exe" or a library file name`);
      if ((r.path === undefined) === (r.array === undefined)) fail(file, `${at}: needs "path" or "array" (one of them)`);
      if (r.path !== undefined && !offsetList(r.path)) fail(file, `${at}.path: 1-8 offsets (0-65536)`);
      if (r.array !== undefined) {
        const a = (r.array ?? {}) as Record<string, unknown>;
        if (!offsetList(a.path) || !offsetList(a.count)) fail(file, `${at}.array: "path" and "count" are 1-8 offsets`);
        if (!isInt(a.stride, 8, 65536) || !isInt(a.pool, 0, 65528)) fail(file, `${at}.array: "stride" (8-65536) and "pool" (an offset) are needed`);
        const sk = a.skip as Record<string, unknown> | undefined;
        if (sk !== undefined && (!isInt(sk.offset, 0, 65532) || !isInt(sk.i32, -(2 ** 31), 2 ** 31 - 1))) fail(file, `${at}.array.skip: needs "offset" and "i32"`);
      }
    }
  }
  if (d.checks !== undefined) {
    if (!Array.isArray(d.checks) || d.checks.length > 8) fail(file, `${where('checks')}: a list of at most 8 checks`);
    for (const [i, c0] of (d.checks as unknown[]).entries()) {
      const c = (c0 ?? {}) as Record<string, unknown>;
      if (typeof c.symbol !== 'string' || typeof c.in !== 'string' || typeof c.says !== 'string' || typeof c.code !== 'string' || !/^([0-9a-f]{2}){1,32}$/.test(c.code)) {
        fail(file, `${where('checks')}[${i}]: needs "symbol", "in", "code" (1-32 bytes in lower-case hex) and "says"`);
      }
    }
  }
}

/** The directory of the profiles shipped with leakscope. */
export function profilesDir(): string {
  return packagePath('profiles', 'allocators');
}

export function builtinProfileNames(): string[] {
  const dir = profilesDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.endsWith('.json')).map((n) => basename(n, '.json')).sort();
}

/** Loads `name` (a shipped profile) or a path to a JSON file. */
export function loadProfile(nameOrFile: string): AllocatorProfile {
  const isPath = nameOrFile.includes('/') || nameOrFile.endsWith('.json');
  const file = isPath ? nameOrFile : join(profilesDir(), `${nameOrFile}.json`);
  if (!isPath && !/^[A-Za-z0-9_.-]+$/.test(nameOrFile)) throw new UserError(`unknown allocator "${nameOrFile}"; use one of ${builtinProfileNames().join(', ')} or a .json file`);
  if (!existsSync(file)) {
    if (isPath) throw new UserError(`${file}: no such allocator profile file`);
    throw new UserError(`unknown allocator "${nameOrFile}"; use one of ${builtinProfileNames().join(', ')} or a .json file`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UserError(`allocator profile ${file}: not valid JSON (${(err as Error).message})`);
  }
  return validateProfile(raw, file);
}
