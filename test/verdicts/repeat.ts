// The same workload, captured again and again, must get the same verdicts: `run` captures are
// timing-sensitive (the recorder's clock ticks every few ms, the machine is shared), so each is made
// N times and the verdicts of its labelled entities compared.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VerdictKind } from '../../src/analyses/result.js';
import { labelAll } from './entities.js';
import { CAPTURES, makeCapture } from './make-captures.js';
import { cutFacts, realCases } from './real.js';

/** The `run` captures: their verdicts could depend on timing (every one of the corpus's captures
 *  made by `leakscope run`; the attach ones need root and take half a minute each). */
export const TIMING_SENSITIVE = CAPTURES.filter((c) => !c.root && c.files.every((f) => f.endsWith('.lstrace'))).map((c) => c.name);

export interface RepeatResult {
  /** Per case: the verdicts of each entity group (by the rule that labelled it) in every run. */
  cases: { name: string; runs: Map<string, VerdictKind[]>[]; same: boolean }[];
  lines: string[];
}

/** Entity groups (kind and label rule) → the verdicts their entities got, each once, sorted (how
 *  many libc or loader sites a catch-all rule labels is not a verdict). */
function groups(rows: ReturnType<typeof labelAll>): Map<string, VerdictKind[]> {
  const out = new Map<string, VerdictKind[]>();
  for (const r of rows) {
    if (!r.label) continue;
    const k = `${r.entity.kind}: ${r.label.why}`;
    out.set(k, [...new Set([...(out.get(k) ?? []), r.entity.verdict.verdict])].sort());
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const show = (m: Map<string, VerdictKind[]>) => [...m].map(([k, v]) => `${k} → ${[...new Set(v)].join('/')}`).join('; ');

export async function repeatRuns(n: number, log: (m: string) => void = () => {}, names = TIMING_SENSITIVE): Promise<RepeatResult> {
  const res: RepeatResult = { cases: [], lines: [] };
  for (const name of names) {
    const spec = CAPTURES.find((c) => c.name === name)!;
    const runs = new Map<string, Map<string, VerdictKind[]>[]>();
    const facts: string[] = []; // per run: its capture's markers and exits (shown when it differs)
    for (let i = 0; i < n; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'leakscope-vd-repeat-'));
      try {
        await makeCapture(spec, dir);
        facts.push((await Promise.all(spec.files.map((f) => cutFacts(join(dir, f))))).join(' | '));
        for (const c of realCases(dir).filter((x) => x.name === name || x.name === `${name}-live`)) {
          const g = groups(labelAll(c, await c.load()));
          runs.set(c.name, [...(runs.get(c.name) ?? []), g]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      log(`${name}: run ${i + 1} of ${n}`);
    }
    for (const [c, rs] of runs) {
      const first = JSON.stringify([...rs[0]!]);
      const differ = rs.filter((g) => JSON.stringify([...g]) !== first);
      res.cases.push({ name: c, runs: rs, same: differ.length === 0 });
      res.lines.push(`- ${c}: ${rs.length} runs, ${differ.length === 0 ? 'the same verdicts every time' : `${differ.length} runs differ`}: ${show(rs[0]!)}`);
      for (const d of differ.slice(0, 3)) res.lines.push(`  differs (run ${rs.indexOf(d) + 1}: ${facts[rs.indexOf(d)]}; run 1: ${facts[0]}): ${show(d)}`);
    }
  }
  return res;
}
