// Allocator profiles: data files (profiles/allocators/<name>.json) that say which functions to
// probe, what each one means (its role) and where its values are (an argument, the return
// value, or *argN after return). The loader stays generic; this file validates a profile and
// compiles it into the BPF side's specs (native/bpf/src/ls_event.h).

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
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

/** Where a value comes from: `arg0`..`arg5`, `ret`, or `*argN` (the word argN points to, read after return).
 *  @pattern ^(arg[0-5]|ret|\*arg[0-5])$ */
export type ValueSource = string;

/** Several sources multiplied (calloc: ["arg0", "arg1"]).
 *  @minItems 1
 *  @maxItems 2 */
export type ValueSources = ValueSource[];

/** `exe` (the target's executable) or a library file name prefix (`libc.so.6`, `libapr-1.so`).
 *  @pattern ^(exe|[A-Za-z0-9_.+-]{1,100})$ */
export type ModuleName = string;

/** An offset into a structure.
 *  @asType integer
 *  @minimum 0
 *  @maximum 4096 */
export type Offset = number;

/** An offset along a path of pointers.
 *  @asType integer
 *  @minimum 0
 *  @maximum 65536 */
export type PathOffset = number;

/** 1 to 8 offsets: each step reads the 64-bit word at address + offset.
 *  @minItems 1
 *  @maxItems 8 */
export type OffsetPath = PathOffset[];

export interface ProfileFunction {
  /** @pattern ^[A-Za-z_][A-Za-z0-9_.@]{0,200}$ */
  symbol: string;
  in: ModuleName;
  role: Role;
  addr?: ValueSource;
  /** One source, or several multiplied (calloc: ["arg0", "arg1"]). */
  size?: ValueSource | ValueSources;
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
  first: { offset: Offset; deref: boolean };
  /** Offset of the next-node pointer in a node. */
  next: Offset;
  /** A node spans [node, *(node + end)): its capacity counts. */
  end?: Offset;
  /** A node points at a malloc'd block at this offset: the block's size counts (glibc chunk header). */
  mallocPtr?: Offset;
  /** The list is circular (APR's active ring). */
  ring?: boolean;
}

/** A place pools are found from: the address of a global symbol, followed through `path` (each
 *  step reads the 64-bit word at address + step); the result is a pool. With `array`, the same
 *  kind of path leads to an array of structs, each of which may point at a pool. */
export interface DiscoveryRoot {
  /** What these pools are (`cycle`, `connection`): their tag when they have none of their own.
   *  @pattern ^[A-Za-z0-9_ .>-]{1,40}$ */
  name: string;
  /** @pattern ^[A-Za-z_][A-Za-z0-9_.]{0,200}$ */
  symbol: string;
  /** As in `functions[].in`. */
  in: ModuleName;
  path?: OffsetPath;
  array?: {
    /** To the first element, and to the element count (a 64-bit word). */
    path: OffsetPath;
    count: OffsetPath;
    /** @asType integer
     *  @minimum 8
     *  @maximum 65536 */
    stride: number;
    /** Offset of the pool pointer in an element (null: no pool).
     *  @asType integer
     *  @minimum 0
     *  @maximum 65528 */
    pool: number;
    /** Elements whose signed 32-bit value at `offset` is `i32` are not in use (a closed connection's fd -1). */
    skip?: {
      /** @asType integer
       *  @minimum 0
       *  @maximum 65532 */
      offset: number;
      /** @asType integer
       *  @minimum -2147483648
       *  @maximum 2147483647 */
      i32: number;
    };
  };
}

/** How to find the pools alive before the trace began (attach's discovery walk). */
export interface PoolDiscovery {
  /** Offsets of the tree links in a pool, when pools form a tree (APR): parent, first child, next
   *  sibling, and `backref`, the address of the link pointing at this pool (*backref == pool):
   *  a pool is taken only when its links agree. */
  tree?: { parent: Offset; child: Offset; sibling: Offset; backref?: Offset };
  /** Offset of the pool's tag (a pointer to a NUL-terminated string). */
  tag?: Offset;
  /** What every pool's own memory must satisfy: the word at pool + offset, minus the pool's
   *  address, is within [min, max] (signed). Memory that fails is not taken for a pool.
   *  @maxItems 8 */
  sane?: SaneCheck[];
  /** @maxItems 8 */
  roots?: DiscoveryRoot[];
  /** The layout as the allocator's own code shows it: a function's first bytes (hex), checked
   *  against the target's by `doctor` (`says` tells what they prove).
   *  @maxItems 8 */
  checks?: CodeCheck[];
}

/** The word at pool + offset, minus the pool's address, is within [min, max]. */
export interface SaneCheck {
  offset: Offset;
  /** @asType integer
   *  @minimum -4294967296
   *  @maximum 4294967296 */
  min: number;
  /** @asType integer
   *  @minimum -4294967296
   *  @maximum 4294967296 */
  max: number;
}

export interface CodeCheck {
  symbol: string;
  in: string;
  /** 1-32 bytes in lower-case hex.
   *  @pattern ^([0-9a-f]{2}){1,32}$ */
  code: string;
  says: string;
}

export interface AllocatorProfile {
  /** @pattern ^[A-Za-z0-9_.-]{1,40}$ */
  name: string;
  description?: string;
  /** Pool family for pool-create events ('nginx', 'apr', or the profile's own). */
  poolKind?: string;
  /** Chosen automatically when these symbols are defined where `in` says. */
  detect?: { in: string; symbols: string[]; priority?: number };
  /** @minItems 1
   *  @maxItems 48 */
  functions: ProfileFunction[];
  /** How to read a pool's size from its own structure (at destroy/clear, and for live pools). */
  poolSize?: { lists: PoolLists };
  /** How to find the pools that were alive before the trace began. */
  discover?: PoolDiscovery;
  /** Profiles combined with this one (an nginx target also gets libc when asked). */
  file?: string;
  /** Which tracer runs it: the generic uprobe loader (default) or a dedicated one ('luajit'). */
  engine?: 'uprobes' | 'luajit';
  /** The LuaJIT tracer's facts, documented beside the profile (native/luajit holds them in C). */
  luajit?: {
    /** Functions whose calls yield a lua_State. */
    discover: string[];
    /** The builds whose layout this is. */
    versions: string;
    /** Field offsets by structure. */
    layout: Record<string, Record<string, number>>;
  };
}

/** @minItems 1
 *  @maxItems 2 */
export type PoolLists = PoolList[];

function fail(file: string, msg: string): never {
  throw new UserError(`allocator profile ${file}: ${msg}`);
}

/** The schema the AllocatorProfile type generates (scripts/schemas.mjs), compiled on first use. */
let schemaCheck: ValidateFunction | undefined;
function checkSchema(raw: unknown): ErrorObject | undefined {
  schemaCheck ??= new Ajv({ allErrors: false }).compile(JSON.parse(readFileSync(packagePath('docs', 'allocator-profile.schema.json'), 'utf8')) as object);
  return schemaCheck(raw) ? undefined : (schemaCheck.errors ?? [])[0];
}

/** One schema error as a user reads it: where in the profile, and what is wrong there. */
function schemaMessage(e: ErrorObject): string {
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') : 'the profile';
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'enum') return `${where}: must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
  if (e.keyword === 'pattern') return `${where}: must match ${String(p.pattern)}`;
  if (e.keyword === 'additionalProperties') return `${where}: unknown key "${String(p.additionalProperty)}"`;
  if (e.keyword === 'required') return `${where}: needs "${String(p.missingProperty)}"`;
  return `${where}: ${e.message ?? 'invalid'}`;
}

/** The fields each role reads (its probe needs them). */
const NEEDS: Record<Role, (keyof ProfileFunction)[]> = {
  alloc: ['addr', 'size'], free: ['addr'], realloc: ['old', 'addr', 'size'], 'pool-create': ['pool'],
  'pool-destroy': ['pool'], 'pool-clear': ['pool'], 'pool-alloc': ['pool', 'size'], 'pool-free': ['pool', 'addr'], 'pool-tag': ['pool', 'tag'],
};

/** Validates a parsed profile against its schema (docs/allocator-profile.schema.json, generated
 *  from the types above), then what a schema does not say: the fields each role needs, a
 *  function listed once, a list's size, a range's order, a root's one way. Throws a UserError
 *  naming the file and the problem. */
export function validateProfile(raw: unknown, file: string): AllocatorProfile {
  const e = checkSchema(raw);
  if (e) fail(file, schemaMessage(e));
  const p = raw as AllocatorProfile;
  const seen = new Set<string>();
  for (const [i, f] of p.functions.entries()) {
    for (const k of NEEDS[f.role]) if (f[k] === undefined) fail(file, `functions[${i}]: role ${f.role} needs "${k}"`);
    const key = `${f.in}:${f.symbol}`;
    if (seen.has(key)) fail(file, `functions[${i}]: ${key} listed twice`);
    seen.add(key);
  }
  for (const [i, l] of (p.poolSize?.lists ?? []).entries()) {
    if (l.end === undefined && l.mallocPtr === undefined) fail(file, `poolSize.lists[${i}]: needs "end" or "mallocPtr"`);
  }
  for (const [i, c] of (p.discover?.sane ?? []).entries()) {
    if (c.min > c.max) fail(file, `discover.sane[${i}]: "min" must not be above "max"`);
  }
  for (const [i, r] of (p.discover?.roots ?? []).entries()) {
    if ((r.path === undefined) === (r.array === undefined)) fail(file, `discover.roots[${i}]: needs "path" or "array" (one of them)`);
  }
  return { ...p, file };
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
