// The agent's configuration: a YAML or JSON file (YAML is a superset of JSON: one parser for
// both), checked key by key so that a mistake is one line naming the file, the line and the key.
// Command-line flags fill or override the common settings (config-flags.ts).

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, type Document, type Node } from 'yaml';
import { UserError } from '../errors.js';
import { parseDurationMs } from '../model/units.js';
import { DEFAULT_MAX_PROBE_RATE, type BudgetConfig } from '../attach/governor.js';

export type TargetMode = 'auto' | 'events' | 'aggregate' | 'walk';

export interface TargetConfig {
  /** The `target` label of its metrics. */
  name: string;
  /** How its processes are found: exactly one of these. */
  exe?: string;
  process?: string;
  unit?: string;
  pid?: number;
  /** Allocator profiles (names or .json files); empty = chosen from the target's symbols. */
  allocator: string[];
  mode: TargetMode;
  poolAllocs: boolean;
  stackBytes: number;
  poolSampleMs: number;
  /** LuaJIT (allocator luajit): how often and how long its GC heap is traced. */
  luajitEveryMs: number;
  luajitForMs: number;
  /** The probes' cost budget in `auto` mode (governor.ts). */
  budget: BudgetConfig;
}

export interface SegmentsConfig {
  dir: string;
  everyMs: number;
  maxBytes: number;
  maxAgeMs: number;
}

export interface AgentConfig {
  listen: { host: string; port: number };
  /** A bearer token every request must carry (read from a file, or given inline). */
  token?: string;
  tls?: { cert: string; key: string };
  insecure: boolean;
  sampleMs: number;
  windowMs: number;
  topSites: number;
  topClasses: number;
  limits: { poolsPerProcess: number; blocksPerProcess: number; stacks: number; trackedSeries: number };
  segments?: SegmentsConfig;
  /** Drop root after attaching: the HTTP side runs as this user (default nobody). */
  user: string;
  targets: TargetConfig[];
}

export const DEFAULTS = {
  listen: '127.0.0.1:9464',
  sample: '15s',
  window: '30m',
  topSites: 10,
  topClasses: 20,
  poolsPerProcess: 100_000,
  blocksPerProcess: 1_000_000,
  stacks: 20_000,
  trackedSeries: 512,
  stackBytes: 8192,
  poolSample: '2s',
  luajitEvery: '10m',
  luajitFor: '1m',
  segmentEvery: '10m',
  segmentMaxBytes: '1GiB',
  segmentMaxAge: '24h',
  user: 'nobody',
  maxProbeRate: DEFAULT_MAX_PROBE_RATE,
  budgetSustain: '10s',
  budgetBackoff: '10m',
} as const;

/** The governor measures every check (2 s, agent.ts): an interval of 3 of them at least. */
const MIN_SUSTAIN_MS = 6000;

/** Where a config value came from, for error lines: `agent.yaml:12: targets[0].exe`. */
export class ConfigError extends UserError {}

type Path = (string | number)[];

function pathText(path: Path): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** Reads values out of a parsed document, failing with the file, line and key. */
class Reader {
  constructor(private readonly file: string, private readonly doc: Document | undefined, private readonly lines: LineCounter | undefined) {}

  fail(path: Path, msg: string): never {
    // the key's own node, else the nearest one above it (a default that is not written)
    let node: Node | undefined;
    for (let n = path.length; n > 0 && !node?.range; n--) node = this.doc?.getIn(path.slice(0, n), true) as Node | undefined;
    const line = node?.range && this.lines ? `:${this.lines.linePos(node.range[0]).line}` : '';
    const key = path.length ? `${pathText(path)}: ` : '';
    throw new ConfigError(`${this.file}${line}: ${key}${msg}`);
  }

  obj(v: unknown, path: Path, keys: readonly string[]): Record<string, unknown> {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'expected a mapping (key: value lines)');
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) {
        const near = keys.find((x) => x.toLowerCase() === k.toLowerCase() || editDistance(x, k) <= 2);
        this.fail([...path, k], `unknown key${near ? ` (did you mean "${near}"?)` : `; known keys: ${keys.join(', ')}`}`);
      }
    }
    return o;
  }

  str(v: unknown, path: Path, def?: string): string {
    if (v === undefined || v === null) {
      if (def !== undefined) return def;
      this.fail(path, 'is required');
    }
    if (typeof v !== 'string' || v.trim() === '') this.fail(path, 'expected a non-empty string');
    return v;
  }

  optStr(v: unknown, path: Path): string | undefined {
    return v === undefined || v === null ? undefined : this.str(v, path);
  }

  int(v: unknown, path: Path, def: number, min: number, max: number): number {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(path, `expected a whole number from ${min} to ${max}`);
    return v;
  }

  bool(v: unknown, path: Path, def: boolean): boolean {
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') this.fail(path, 'expected true or false');
    return v;
  }

  duration(v: unknown, path: Path, def: string, minMs = 1): number {
    const text = v === undefined || v === null ? def : typeof v === 'number' ? String(v) : v;
    const ms = typeof text === 'string' ? parseDurationMs(text) : undefined;
    if (ms === undefined || ms < minMs) this.fail(path, `"${String(v)}" is not a duration of at least ${minMs} ms (e.g. 500ms, 15s, 5m, 1h)`);
    return ms;
  }

  size(v: unknown, path: Path, def: string): number {
    const text = v === undefined || v === null ? def : typeof v === 'number' ? String(v) : v;
    const n = typeof text === 'string' ? parseSize(text) : undefined;
    if (n === undefined) this.fail(path, `"${String(v)}" is not a size (e.g. 500MiB, 2GiB, 1048576)`);
    return n;
  }

  list(v: unknown, path: Path): unknown[] {
    if (v === undefined || v === null) return [];
    if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
    if (!Array.isArray(v)) this.fail(path, 'expected a list');
    return v;
  }
}

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

/** 1048576, 512KiB, 500MiB, 2GiB (binary units; k/M/G accepted as the same). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const n = Math.round(Number(m[1]) * mult);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** host:port, [v6]:port or a bare port (loopback then). */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim()) ?? /^()()(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1] ?? (m[2] || '127.0.0.1');
  return { host, port };
}

const TOP_KEYS = ['listen', 'auth', 'tls', 'insecure', 'sample', 'window', 'topSites', 'topClasses', 'limits', 'segments', 'user', 'budget', 'targets'] as const;
const TARGET_KEYS = ['name', 'exe', 'process', 'unit', 'pid', 'allocator', 'mode', 'poolAllocs', 'stackBytes', 'poolSample', 'luajit', 'budget'] as const;
const BUDGET_KEYS = ['maxProbeRate', 'sustain', 'backoff'] as const;

/** A `budget:` mapping, its unset keys taken from `base` (the top-level budget, or the defaults). */
function readBudget(raw: unknown, r: Reader, path: Path, base: BudgetConfig): BudgetConfig {
  const b = r.obj(raw, path, BUDGET_KEYS);
  return {
    maxProbeRate: r.int(b.maxProbeRate, [...path, 'maxProbeRate'], base.maxProbeRate, 0, 1_000_000_000),
    sustainMs: b.sustain === undefined || b.sustain === null ? base.sustainMs : r.duration(b.sustain, [...path, 'sustain'], DEFAULTS.budgetSustain, MIN_SUSTAIN_MS),
    backoffMs: b.backoff === undefined || b.backoff === null ? base.backoffMs : r.duration(b.backoff, [...path, 'backoff'], DEFAULTS.budgetBackoff, 1000),
  };
}

/** Parses config text (YAML or JSON); `file` names it in errors. */
export function parseConfig(text: string, file: string): AgentConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? (e.pos ? lines.linePos(e.pos[0]).line : undefined);
    throw new ConfigError(`${file}${line ? `:${line}` : ''}: not valid YAML or JSON: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  if (raw !== null && raw !== undefined && (!isMap(doc.contents) || typeof raw !== 'object')) {
    throw new ConfigError(`${file}: expected a mapping of settings (listen:, targets:, ...) at the top`);
  }
  return readConfig(raw ?? {}, new Reader(file, doc, lines));
}

export function loadConfigFile(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code === 'ENOENT' ? 'no such config file' : code === 'EISDIR' ? 'is a directory, expected a config file' : `cannot read the config (${code ?? 'error'})`}`);
  }
  return parseConfig(text, path);
}

/** A config from a plain object (flags only, or tests). */
export function configFromObject(raw: unknown, what = 'flags'): AgentConfig {
  return readConfig(raw, new Reader(what, undefined, undefined));
}

function readConfig(raw: unknown, r: Reader): AgentConfig {
  const o = r.obj(raw, [], TOP_KEYS);
  const listenText = o.listen === undefined ? DEFAULTS.listen : typeof o.listen === 'number' ? String(o.listen) : r.str(o.listen, ['listen']);
  const listen = parseListen(listenText) ?? r.fail(['listen'], `"${listenText}" is not HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464)`);

  const auth = r.obj(o.auth, ['auth'], ['bearerToken', 'bearerTokenFile']);
  let token = r.optStr(auth.bearerToken, ['auth', 'bearerToken']);
  const tokenFile = r.optStr(auth.bearerTokenFile, ['auth', 'bearerTokenFile']);
  if (token && tokenFile) r.fail(['auth'], 'give bearerToken or bearerTokenFile, not both');
  if (tokenFile) token = readSecret(tokenFile, r, ['auth', 'bearerTokenFile']);
  if (token !== undefined && (token.length < 16 || /\s/.test(token))) r.fail(['auth', tokenFile ? 'bearerTokenFile' : 'bearerToken'], 'a token must be at least 16 characters, no spaces');

  const tlsRaw = o.tls === undefined ? undefined : r.obj(o.tls, ['tls'], ['cert', 'key']);
  const tls = tlsRaw ? { cert: r.str(tlsRaw.cert, ['tls', 'cert']), key: r.str(tlsRaw.key, ['tls', 'key']) } : undefined;

  const lim = r.obj(o.limits, ['limits'], ['poolsPerProcess', 'blocksPerProcess', 'stacks', 'trackedSeries']);
  const sampleMs = r.duration(o.sample, ['sample'], DEFAULTS.sample, 100);
  const windowMs = r.duration(o.window, ['window'], DEFAULTS.window, 1000);
  if (windowMs < 8 * sampleMs) r.fail(['window'], `must hold at least 8 samples (window >= 8 x sample = ${(8 * sampleMs) / 1000}s): a verdict needs 8 points`);

  let segments: SegmentsConfig | undefined;
  if (o.segments !== undefined && o.segments !== null) {
    const s = r.obj(o.segments, ['segments'], ['dir', 'every', 'maxBytes', 'maxAge']);
    segments = {
      dir: r.str(s.dir, ['segments', 'dir']),
      everyMs: r.duration(s.every, ['segments', 'every'], DEFAULTS.segmentEvery, 1000),
      maxBytes: r.size(s.maxBytes, ['segments', 'maxBytes'], DEFAULTS.segmentMaxBytes),
      maxAgeMs: r.duration(s.maxAge, ['segments', 'maxAge'], DEFAULTS.segmentMaxAge, 1000),
    };
  }

  const budget = readBudget(o.budget, r, ['budget'], {
    maxProbeRate: DEFAULTS.maxProbeRate,
    sustainMs: parseDurationMs(DEFAULTS.budgetSustain)!,
    backoffMs: parseDurationMs(DEFAULTS.budgetBackoff)!,
  });
  const targetsRaw = r.list(o.targets, ['targets']);
  if (targetsRaw.length === 0) r.fail(['targets'], 'no targets: list at least one (exe:, process:, unit: or pid:)');
  const targets = targetsRaw.map((t, i) => readTarget(t, r, ['targets', i], budget));
  const names = new Set<string>();
  targets.forEach((t, i) => {
    if (names.has(t.name)) r.fail(['targets', i, 'name'], `"${t.name}" names two targets; give each its own name`);
    names.add(t.name);
  });

  return {
    listen,
    token,
    tls,
    insecure: r.bool(o.insecure, ['insecure'], false),
    sampleMs,
    windowMs,
    topSites: r.int(o.topSites, ['topSites'], DEFAULTS.topSites, 1, 1000),
    topClasses: r.int(o.topClasses, ['topClasses'], DEFAULTS.topClasses, 1, 1000),
    limits: {
      poolsPerProcess: r.int(lim.poolsPerProcess, ['limits', 'poolsPerProcess'], DEFAULTS.poolsPerProcess, 100, 10_000_000),
      blocksPerProcess: r.int(lim.blocksPerProcess, ['limits', 'blocksPerProcess'], DEFAULTS.blocksPerProcess, 100, 100_000_000),
      stacks: r.int(lim.stacks, ['limits', 'stacks'], DEFAULTS.stacks, 100, 10_000_000),
      trackedSeries: r.int(lim.trackedSeries, ['limits', 'trackedSeries'], DEFAULTS.trackedSeries, 16, 100_000),
    },
    segments,
    user: o.user === undefined ? DEFAULTS.user : r.str(o.user, ['user']),
    targets,
  };
}

function readSecret(path: string, r: Reader, at: Path): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    r.fail(at, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function readTarget(raw: unknown, r: Reader, path: Path, budget: BudgetConfig): TargetConfig {
  const t = r.obj(raw, path, TARGET_KEYS);
  const exe = r.optStr(t.exe, [...path, 'exe']);
  const proc = r.optStr(t.process, [...path, 'process']);
  const unit = r.optStr(t.unit, [...path, 'unit']);
  const pid = t.pid === undefined ? undefined : r.int(t.pid, [...path, 'pid'], 0, 1, 2 ** 22);
  const how = [exe, proc, unit, pid].filter((x) => x !== undefined).length;
  if (how !== 1) r.fail(path, how === 0 ? 'say how to find the target: exe:, process:, unit: or pid:' : 'give one of exe:, process:, unit:, pid:, not several');
  if (exe !== undefined && !exe.startsWith('/')) r.fail([...path, 'exe'], `"${exe}" is not an absolute path (e.g. /usr/sbin/nginx)`);
  if (proc !== undefined && (proc.length > 15 || /[/\0\n]/.test(proc))) r.fail([...path, 'process'], `"${proc}" is not a process name (at most 15 characters, as in /proc/PID/comm)`);
  if (unit !== undefined && !/^[A-Za-z0-9:_.@\\-]+$/.test(unit)) r.fail([...path, 'unit'], `"${unit}" is not a systemd unit name (e.g. nginx.service)`);
  const name = t.name === undefined ? defaultName(exe, proc, unit, pid) : r.str(t.name, [...path, 'name']);
  if (!/^[A-Za-z0-9_.:@-]{1,64}$/.test(name)) r.fail([...path, 'name'], `"${name}" must be 1-64 letters, digits, _ . : @ -`);
  const allocator = r.list(t.allocator, [...path, 'allocator']).map((a, i) => r.str(a, [...path, 'allocator', i]));
  const mode = t.mode === undefined ? 'auto' : r.str(t.mode, [...path, 'mode']);
  if (mode !== 'auto' && mode !== 'events' && mode !== 'aggregate' && mode !== 'walk') r.fail([...path, 'mode'], `"${mode}" must be auto, events, aggregate or walk`);
  const lj = r.obj(t.luajit, [...path, 'luajit'], ['every', 'for']);
  const luajitEveryMs = r.duration(lj.every, [...path, 'luajit', 'every'], DEFAULTS.luajitEvery, 1000);
  const luajitForMs = r.duration(lj.for, [...path, 'luajit', 'for'], DEFAULTS.luajitFor, 1000);
  if (luajitForMs > luajitEveryMs) r.fail([...path, 'luajit', 'for'], 'must not be longer than luajit.every');
  return {
    name,
    exe, process: proc, unit, pid,
    allocator,
    mode,
    poolAllocs: r.bool(t.poolAllocs, [...path, 'poolAllocs'], false),
    stackBytes: r.int(t.stackBytes, [...path, 'stackBytes'], DEFAULTS.stackBytes, 0, 16384),
    poolSampleMs: r.duration(t.poolSample, [...path, 'poolSample'], DEFAULTS.poolSample, 100),
    luajitEveryMs,
    luajitForMs,
    budget: readBudget(t.budget, r, [...path, 'budget'], budget),
  };
}

function defaultName(exe?: string, proc?: string, unit?: string, pid?: number): string {
  const base = exe ? exe.slice(exe.lastIndexOf('/') + 1) : proc ?? unit?.replace(/\.service$/, '') ?? `pid-${pid}`;
  return base.replace(/[^A-Za-z0-9_.:@-]/g, '_').slice(0, 64) || 'target';
}

