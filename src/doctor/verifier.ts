// How close each BPF program is to the kernel verifier's limits. Every loader has a verify mode
// (native/common/ls_verify.h) that loads each configuration it can run with and prints, per
// program, the instructions the verifier processed (bpf_prog_info.verified_insns), the program's
// size and its stack; a load failure gives the verifier's reason. Used by `doctor`,
// `npm run bench -- verifier` (BENCHMARKS.md) and test/doctor/verifier-margin.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { check, type Check } from './check.js';
import { nativeDirs } from '../native/locate.js';

/** The loaders, their verify switch, and the native part that builds them. */
export const LOADERS: { part: string; name: string; bin: string; args: string[]; required: boolean }[] = [
  { part: 'bpf', name: 'leakscope-bpf', bin: 'native/bpf/build/leakscope-bpf', args: ['verify'], required: true },
  { part: 'luajit', name: 'lstrace-luajit', bin: 'native/luajit/build/lstrace-luajit', args: ['--verify'], required: false },
  { part: 'unwind', name: 'ls-kstack', bin: 'native/unwind/build/ls-kstack', args: ['--verify'], required: false },
];

/** The margin every program must keep: half of each limit. */
export const MARGIN = 2;

export interface ProgramLoad {
  loader: string;
  config: string;
  program: string;
  verified_insns: number;
  insns: number;
  /** Sum of the stack depths of the program's functions: a bound of its deepest call chain. */
  stack: number;
  insn_limit: number;
  stack_limit: number;
}

export interface VerifyResult {
  loader: string;
  /** Every program in every configuration that loaded. */
  loads: ProgramLoad[];
  /** Configurations that did not load, with the verifier's (or the kernel's) reason. */
  errors: { config: string; error: string }[];
  /** Set when the loader could not be run at all. */
  failed?: string;
}

/** Where a loader is built: the package's native/ or the per-user cache (src/native/locate.ts). */
function loaderBin(root: string, loader: (typeof LOADERS)[number]): string | undefined {
  const rel = loader.bin.replace(/^native\//, '');
  return nativeDirs(root).map((d) => join(d, rel)).find((p) => existsSync(p));
}

export function runVerify(root: string, loader: (typeof LOADERS)[number]): VerifyResult {
  const res: VerifyResult = { loader: loader.name, loads: [], errors: [] };
  const bin = loaderBin(root, loader);
  if (!bin) return { ...res, failed: `${loader.bin} is not built` };
  const r = spawnSync(bin, loader.args, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) return { ...res, failed: `${loader.name}: ${r.error.message}` };
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    let j: Record<string, unknown>;
    try { j = JSON.parse(line); } catch { return { ...res, failed: `${loader.name}: unexpected output: ${line.slice(0, 200)}` }; }
    if (typeof j.error === 'string') res.errors.push({ config: String(j.config), error: j.error });
    else res.loads.push(j as unknown as ProgramLoad);
  }
  if (!res.loads.length && !res.errors.length) return { ...res, failed: `${loader.name} printed nothing (status ${r.status}): ${r.stderr.trim().split('\n')[0] ?? ''}` };
  return res;
}

/** Per program, its heaviest configuration (most instructions processed; the largest stack). */
export function worstPerProgram(loads: ProgramLoad[]): ProgramLoad[] {
  const by = new Map<string, ProgramLoad>();
  for (const l of loads) {
    const w = by.get(l.program);
    if (!w) by.set(l.program, { ...l });
    else {
      if (l.verified_insns > w.verified_insns) { w.verified_insns = l.verified_insns; w.config = l.config; }
      w.insns = Math.max(w.insns, l.insns);
      w.stack = Math.max(w.stack, l.stack);
    }
  }
  return [...by.values()];
}

/** Within MARGIN of every limit? */
export function withinMargin(p: ProgramLoad): boolean {
  return p.verified_insns * MARGIN <= p.insn_limit && p.insns * MARGIN <= p.insn_limit && p.stack * MARGIN <= p.stack_limit;
}

const times = (limit: number, used: number) => (used > 0 ? `${(limit / used).toFixed(limit / used >= 10 ? 0 : 1)}×` : '∞');

export function describe(p: ProgramLoad): string {
  return `${p.program}: ${p.verified_insns.toLocaleString('en-US')} of ${p.insn_limit.toLocaleString('en-US')} instructions processed ` +
    `(${times(p.insn_limit, p.verified_insns)} under the limit, config ${p.config}), up to ${p.insns} instructions long, stack ${p.stack} of ${p.stack_limit} bytes`;
}

export function verifierChecks(root: string): Check[] {
  const out: Check[] = [];
  const root0 = process.getuid?.() === 0;
  for (const l of LOADERS) {
    if (!loaderBin(root, l)) continue; // the native part's own check says it is not built
    const id = `verifier-${l.part}`;
    if (!root0) {
      out.push(check({ id, group: 'native', status: 'warn', title: `BPF verifier (${l.name}): not checked`, detail: 'loading BPF programs needs root', fix: 'run leakscope doctor with sudo' }));
      continue;
    }
    const r = runVerify(root, l);
    if (r.failed || r.errors.length) {
      const why = r.failed ?? r.errors.map((e) => `${e.config}: ${e.error}`).join('\n');
      out.push(check({ id, group: 'native', required: l.required, status: l.required ? 'fail' : 'warn', title: `BPF verifier (${l.name}): does not load`, detail: why, fix: 'report it with this output (kernel and leakscope versions)' }));
      continue;
    }
    const worst = worstPerProgram(r.loads).sort((a, b) => b.verified_insns - a.verified_insns);
    const ok = worst.every(withinMargin);
    const top = worst[0]!;
    out.push(check({
      id, group: 'native', status: ok ? 'ok' : 'warn',
      title: `BPF verifier (${l.name}): ${worst.length} programs load, the largest ${top.program} at ${top.verified_insns.toLocaleString('en-US')} instructions processed (${times(top.insn_limit, top.verified_insns)} under the limit)`,
      detail: worst.map(describe).join('\n'),
      fix: ok ? undefined : `a program is within ${MARGIN}× of a verifier limit: it may be rejected on another kernel`,
    }));
  }
  return out;
}
