// The verdict corpus (test/verdicts): the confusion matrix of labels against verdicts over every
// entity (process, pool class, live pool, site) of every case, every disagreement, and whether
// the same `run` workload, captured again and again, gets the same verdicts.
//
//   npm run bench -- verdicts       the committed captures, fixtures and synthetic shapes; then
//                                   each `run` capture made 10 times afresh (--quick: 2 times)
//   LSBENCH_VERDICTS_FRESH=1 ...    scores captures made afresh instead of the committed ones
//                                   (apache2, nginx, vd-server; the attach ones need root + eBPF)
//   LSBENCH_VERDICTS_DIR=DIR ...    scores the captures in DIR (make-captures.ts DIR)
//   LSBENCH_VERDICTS_REPEAT=N ...   N captures of each `run` workload (0: none)
//
// Targets (issue 13): no entity labelled bounded/steady/no-calls called leak; >= 95% exact
// agreement; every entity labelled leak/growing called leak or growing; the same workload gives
// the same verdicts 10 times. Figures: bench/results/verdicts.json (the table of BENCHMARKS.md),
// the printout in bench/results/verdicts.md.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpus, scoreCases } from '../test/verdicts/corpus.js';
import { disagreementText, matrixText, score, STATES } from '../test/verdicts/entities.js';
import { CAPTURES, makeCapture } from '../test/verdicts/make-captures.js';
import { repeatRuns, TIMING_SENSITIVE } from '../test/verdicts/repeat.js';
import { quick, root, size, startBench, type Figure } from './support/record.js';

const bench = startBench('verdicts');
const fresh = process.env.LSBENCH_VERDICTS_FRESH === '1';
const repeat = size('LSBENCH_VERDICTS_REPEAT', 10, 2);

let dir: string | undefined = process.env.LSBENCH_VERDICTS_DIR || undefined;
if (fresh) {
  dir = mkdtempSync(join(tmpdir(), 'leakscope-vd-bench-'));
  const isRoot = process.getuid?.() === 0;
  for (const spec of CAPTURES) {
    if (spec.root && !isRoot) continue;
    const t0 = Date.now();
    await makeCapture(spec, dir);
    console.log(`captured ${spec.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
}

const out: string[] = [];
const say = (s = '') => {
  out.push(s);
  console.log(s);
};
try {
  const cases = corpus(dir);
  const rows = await scoreCases(cases);
  const s = score(rows);
  say(`# Verdict corpus (\`bench/verdicts.bench.ts\`)`);
  say();
  say(`Figures and the command that made them: \`bench/results/verdicts.json\` (the table of BENCHMARKS.md). ` +
    `Captures: ${fresh ? 'made afresh by test/verdicts/make-captures.ts' : dir ? `those in ${dir}` : 'the committed ones in test/verdicts/captures'}; ${cases.length} cases, ${s.total} labelled entities.`);
  say();
  say('```');
  say(matrixText(s));
  say('```');
  say();
  const bySource = new Map<string, { n: number; ok: number }>();
  for (const r of rows) {
    if (!r.label) continue;
    const b = bySource.get(r.source) ?? { n: 0, ok: 0 };
    b.n++;
    if (r.label.label === r.entity.verdict.verdict) b.ok++;
    bySource.set(r.source, b);
  }
  say('| source | entities | agree |');
  say('|---|---|---|');
  for (const [src, b] of bySource) say(`| ${src} | ${b.n} | ${b.ok} (${((100 * b.ok) / b.n).toFixed(1)}%) |`);
  say();
  const pct = s.total ? (100 * s.agree) / s.total : 0;
  say(`Exact agreement: ${s.agree} of ${s.total} (${pct.toFixed(1)}%; target >= 95%).`);
  say(`Labelled bounded/steady/no-calls, called leak: ${s.falseLeaks.length} (target 0).`);
  say(`Labelled leak/growing, called neither: ${s.missedLeaks.length} (target 0).`);
  if (s.unlabelled.length) say(`Unlabelled entities (a corpus error): ${s.unlabelled.length}: ${s.unlabelled.slice(0, 5).map((r) => `${r.case}: ${r.entity.id}`).join('; ')}`);
  say();
  say(s.disagreements.length ? `Disagreements (${s.disagreements.length}):` : 'No disagreements.');
  say();
  for (const d of s.disagreements) say(`- ${disagreementText(d).replace(/\n/g, '\n  ')}`);

  const rep: { name: string; runs: number; same: boolean }[] = [];
  if (repeat > 0) {
    say();
    say(`Repeatability: each \`run\` workload (${TIMING_SENSITIVE.join(', ')}) captured ${repeat} times afresh; per case, the verdicts of each group of entities one label rule covers.`);
    say();
    const r = await repeatRuns(repeat, (m) => console.log(m));
    for (const line of r.lines) say(line);
    for (const c of r.cases) rep.push({ name: c.name, runs: c.runs.length, same: c.same });
  }

  const matrix: Record<string, Record<string, number>> = {};
  for (const want of STATES) {
    const m = s.matrix.get(want);
    if (m) matrix[want] = Object.fromEntries(STATES.filter((got) => m.get(got)).map((got) => [got, m.get(got)!]));
  }
  const figures: Record<string, Figure> = {
    cases: cases.length,
    total: s.total,
    agree: s.agree,
    falseLeaks: s.falseLeaks.length,
    missedLeaks: s.missedLeaks.length,
    unlabelled: s.unlabelled.length,
    matrix,
    disagreements: s.disagreements.map((d) => `${d.case}: ${d.entity.id}: labelled ${d.label!.label}, called ${d.entity.verdict.verdict}`),
    bySource: Object.fromEntries([...bySource].map(([k, b]) => [k, { n: b.n, ok: b.ok }])),
    captures: fresh ? 'fresh' : dir ? 'dir' : 'committed',
    repeat: { runs: repeat, cases: rep },
  };
  bench.finish(figures);
  if (!quick) writeFileSync(join(root, 'bench', 'results', 'verdicts.md'), `${out.join('\n')}\n`);
} finally {
  if (dir && fresh && !process.env.LSBENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
