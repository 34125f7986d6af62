// The agent's command-line flags over its config file (or instead of one): the listen address,
// authentication, sampling and targets given on the command line. A flag wins over the file;
// targets given as flags are added to the file's.

import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { parseDurationMs } from '../model/units.js';
import { configFromObject, loadConfigFile, parseListen, DEFAULTS, type AgentConfig } from './config.js';

export interface AgentFlags {
  config?: string;
  listen?: string;
  exe?: string[];
  process?: string[];
  unit?: string[];
  pid?: string[];
  allocator?: string[];
  sample?: string;
  window?: string;
  topSites?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
  segments?: string;
}

function duration(flag: string, v: string, minMs: number): number {
  const ms = parseDurationMs(v);
  if (ms === undefined || ms < minMs) throw new UserError(`--${flag}: "${v}" is not a duration of at least ${minMs} ms (e.g. 15s, 5m)`);
  return ms;
}

export function agentConfig(f: AgentFlags): AgentConfig {
  const flagTargets: Record<string, unknown>[] = [];
  const alloc = f.allocator?.length ? { allocator: f.allocator } : {};
  for (const exe of f.exe ?? []) flagTargets.push({ exe, ...alloc });
  for (const p of f.process ?? []) flagTargets.push({ process: p, ...alloc });
  for (const u of f.unit ?? []) flagTargets.push({ unit: u, ...alloc });
  for (const p of f.pid ?? []) {
    if (!/^\d{1,8}$/.test(p)) throw new UserError(`--pid: "${p}" is not a process id`);
    flagTargets.push({ pid: Number(p), ...alloc });
  }
  if (!f.config && flagTargets.length === 0) throw new UserError('say what to watch: --config FILE, or --exe PATH / --process NAME / --unit UNIT / --pid PID');
  const cfg = f.config ? loadConfigFile(f.config) : configFromObject({ targets: flagTargets }, 'the command line');
  if (f.config && flagTargets.length) {
    const extra = configFromObject({ targets: flagTargets }, 'the command line').targets;
    for (const t of extra) {
      if (cfg.targets.some((x) => x.name === t.name)) throw new UserError(`target "${t.name}" is in ${f.config} and on the command line; give it once`);
      cfg.targets.push(t);
    }
  }
  if (f.listen !== undefined) cfg.listen = parseListen(f.listen) ?? fail(`--listen: "${f.listen}" is not HOST:PORT (e.g. 127.0.0.1:9464)`);
  if (f.tokenFile !== undefined) {
    try {
      cfg.token = readFileSync(f.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new UserError(`--token-file: cannot read ${f.tokenFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (cfg.token.length < 16 || /\s/.test(cfg.token)) throw new UserError(`--token-file: the token in ${f.tokenFile} must be at least 16 characters, no spaces`);
  }
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new UserError('--tls-cert and --tls-key go together');
  if (f.tlsCert && f.tlsKey) cfg.tls = { cert: f.tlsCert, key: f.tlsKey };
  if (f.insecure) cfg.insecure = true;
  if (f.sample !== undefined) cfg.sampleMs = duration('sample', f.sample, 100);
  if (f.window !== undefined) cfg.windowMs = duration('window', f.window, 1000);
  if (cfg.windowMs < 8 * cfg.sampleMs) throw new UserError(`--window must hold at least 8 samples (>= ${(8 * cfg.sampleMs) / 1000}s with a sample every ${cfg.sampleMs / 1000}s)`);
  if (f.topSites !== undefined) {
    const n = Number(f.topSites);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UserError('--top-sites must be a whole number from 1 to 1000');
    cfg.topSites = n;
  }
  if (f.segments !== undefined) {
    cfg.segments = {
      dir: f.segments,
      everyMs: cfg.segments?.everyMs ?? parseDurationMs(DEFAULTS.segmentEvery)!,
      maxBytes: cfg.segments?.maxBytes ?? 1024 ** 3,
      maxAgeMs: cfg.segments?.maxAgeMs ?? parseDurationMs(DEFAULTS.segmentMaxAge)!,
    };
  }
  return cfg;
}

function fail(msg: string): never {
  throw new UserError(msg);
}
