// The entities of an analysis (processes, pool classes, live pools, sites), their labels, and the
// score of the verdicts against the labels: a confusion matrix and the list of disagreements.

import type { AnalysisResult, PoolClassReport, PoolReport, ProcessReport, SiteReport, Verdict, VerdictKind } from '../../src/analyses/result.js';

export type EntityKind = 'process' | 'class' | 'pool' | 'site';

export interface Entity {
  kind: EntityKind;
  /** Readable and unique within its case: `pid 12 / class pchild`. */
  id: string;
  proc: ProcessReport;
  verdict: Verdict;
  cls?: PoolClassReport;
  pool?: PoolReport;
  site?: SiteReport;
}

export interface Label {
  label: VerdictKind;
  /** One line: why the construction implies this label. */
  why: string;
}

/** A rule of a case's labelling: the first rule whose test matches an entity labels it. */
export interface Rule {
  test: (e: Entity, r: AnalysisResult) => boolean;
  label: VerdictKind;
  why: string;
}

export interface Case {
  name: string;
  /** Where the capture comes from ('synthetic', 'apache2 run', 'fixture', ...). */
  source: string;
  /** What the capture is, in one line (test/verdicts/README.md lists it with the rules). */
  what: string;
  load: () => Promise<AnalysisResult>;
  rules: Rule[];
}

export interface Scored {
  case: string;
  source: string;
  entity: Entity;
  /** Undefined when no rule matched (a corpus error: every entity must be labelled). */
  label?: Label;
}

/** Every judged entity of a result: processes, their pool classes, live pools with a verdict, sites. */
export function entities(r: AnalysisResult): Entity[] {
  const out: Entity[] = [];
  for (const p of r.processes) {
    const who = `pid ${p.pid}`;
    out.push({ kind: 'process', id: who, proc: p, verdict: p.verdict });
    for (const c of p.poolClasses) out.push({ kind: 'class', id: `${who} / class ${c.name}`, proc: p, verdict: c.verdict, cls: c });
    const walk = (x: PoolReport) => {
      if (x.verdict) out.push({ kind: 'pool', id: `${who} / pool ${x.tag || x.createSite} ${x.pool}`, proc: p, verdict: x.verdict, pool: x });
      x.children.forEach(walk);
    };
    p.pools.forEach(walk);
    for (const s of p.sites) {
      if (s.verdict) out.push({ kind: 'site', id: `${who} / site ${s.label}${s.pool ? ` [${s.pool}]` : ''}${s.via === 'mmap' ? ' (mmap)' : ''}`, proc: p, verdict: s.verdict, site: s });
    }
  }
  return out;
}

export function labelAll(c: Case, r: AnalysisResult): Scored[] {
  return entities(r).map((e) => {
    const rule = c.rules.find((x) => x.test(e, r));
    return { case: c.name, source: c.source, entity: e, ...(rule ? { label: { label: rule.label, why: rule.why } } : {}) };
  });
}

/** The verdict states, in the order a matrix lists them. */
export const STATES: VerdictKind[] = ['leak', 'growing', 'bounded', 'steady', 'unfreed', 'no-calls'];
/** Labels that say the entity leaks (the verdict must then be leak or growing). */
export const LEAKING: ReadonlySet<VerdictKind> = new Set<VerdictKind>(['leak', 'growing']);
/** Labels that say the entity does not leak (the verdict must never be leak): a process that
 *  made no call in the trace (`no-calls`) has nothing that could leak in it. */
export const NOT_LEAKING: ReadonlySet<VerdictKind> = new Set<VerdictKind>(['bounded', 'steady', 'no-calls']);

export interface Score {
  total: number;
  agree: number;
  /** matrix[label][verdict] = count */
  matrix: Map<VerdictKind, Map<VerdictKind, number>>;
  disagreements: Scored[];
  unlabelled: Scored[];
  /** Labelled non-leaking, called leak. */
  falseLeaks: Scored[];
  /** Labelled leaking, called neither leak nor growing. */
  missedLeaks: Scored[];
}

export function score(rows: Scored[]): Score {
  const matrix = new Map<VerdictKind, Map<VerdictKind, number>>();
  const s: Score = { total: 0, agree: 0, matrix, disagreements: [], unlabelled: [], falseLeaks: [], missedLeaks: [] };
  for (const row of rows) {
    if (!row.label) {
      s.unlabelled.push(row);
      continue;
    }
    const want = row.label.label;
    const got = row.entity.verdict.verdict;
    s.total++;
    const m = matrix.get(want) ?? new Map<VerdictKind, number>();
    m.set(got, (m.get(got) ?? 0) + 1);
    matrix.set(want, m);
    if (want === got) s.agree++;
    else s.disagreements.push(row);
    if (NOT_LEAKING.has(want) && got === 'leak') s.falseLeaks.push(row);
    if (LEAKING.has(want) && !LEAKING.has(got)) s.missedLeaks.push(row);
  }
  return s;
}

/** The confusion matrix as text: a row per label, a column per verdict. */
export function matrixText(s: Score): string {
  const states = [...new Set([...STATES, ...s.matrix.keys(), ...[...s.matrix.values()].flatMap((m) => [...m.keys()])])];
  const w = 10;
  const lines = [`${'label \\ verdict'.padEnd(16)}${states.map((x) => x.padStart(w)).join('')}${'total'.padStart(w)}`];
  for (const want of states) {
    const m = s.matrix.get(want);
    if (!m) continue;
    let n = 0;
    const cells = states.map((got) => {
      const v = m.get(got) ?? 0;
      n += v;
      return (v ? String(v) : '.').padStart(w);
    });
    lines.push(`${want.padEnd(16)}${cells.join('')}${String(n).padStart(w)}`);
  }
  return lines.join('\n');
}

export function disagreementText(row: Scored): string {
  const e = row.entity;
  return `${row.case}: ${e.id}: labelled ${row.label?.label ?? '(none)'}, called ${e.verdict.verdict}\n    label: ${row.label?.why ?? '-'}\n    verdict: ${e.verdict.explanation}`;
}

/** Short verdict signatures of a result, for comparing runs of the same workload. */
export function signature(c: Case, r: AnalysisResult): Map<string, VerdictKind> {
  const out = new Map<string, VerdictKind>();
  for (const row of labelAll(c, r)) {
    // Entities are named by what the label rules saw, not by pid or address (they change per run).
    if (!row.label) continue;
    const key = `${row.entity.kind}: ${row.label.why}`;
    const prev = out.get(key);
    out.set(key, prev && prev !== row.entity.verdict.verdict ? (`${prev}|${row.entity.verdict.verdict}` as VerdictKind) : row.entity.verdict.verdict);
  }
  return out;
}
