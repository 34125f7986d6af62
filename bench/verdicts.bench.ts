// The verdict corpus (test/verdicts): the confusion matrix of labels against verdicts over every
// entity (process, pool class, live pool, site) of every case, and every disagreement.
//
//   npm run bench -- verdicts                      the committed captures, fixtures, synthetic shapes
//   VERDICTS_FRESH=1 npm run bench -- verdicts     makes the real captures afresh first (apache2,
//                                                  nginx, vd-server; attach ones need root + eBPF)
//   VERDICTS_REPEAT=10 npm run bench -- verdicts   also runs each timing-sensitive `run` capture
//                                                  10 times and checks the verdicts do not change
//
// Targets (issue 13): no entity labelled bounded/steady called leak; >= 95% exact agreement; every
// entity labelled leak/growing called leak or growing; the same workload gives the same verdicts.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpus, scoreCases } from '../test/verdicts/corpus.js';
import { disagreementText, matrixText, score } from '../test/verdicts/entities.js';
import { CAPTURES, makeCapture } from '../test/verdicts/make-captures.js';
import { repeatRuns } from '../test/verdicts/repeat.js';

const root = new URL('..', import.meta.url).pathname;
const fresh = process.env.VERDICTS_FRESH === '1';
const repeat = Number(process.env.VERDICTS_REPEAT ?? 0);
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'test/verdicts'], { cwd: root, encoding: 'utf8' }).trim() !== '';

// VERDICTS_DIR=DIR: captures made before (make-captures.ts DIR), uncompressed.
let dir: string | undefined = process.env.VERDICTS_DIR;
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
  say(`Commit ${commit}${dirty ? ' (with uncommitted changes)' : ''}, ${new Date().toISOString().slice(0, 10)}; command: \`${fresh ? 'VERDICTS_FRESH=1 ' : ''}${repeat ? `VERDICTS_REPEAT=${repeat} ` : ''}npm run bench -- verdicts\`.`);
  say(`Captures: ${fresh ? 'made afresh by test/verdicts/make-captures.ts' : dir ? `those in ${dir}` : 'the committed ones in test/verdicts/captures'}; ${cases.length} cases, ${s.total} labelled entities.`);
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
  say(`Labelled bounded/steady, called leak: ${s.falseLeaks.length} (target 0).`);
  say(`Labelled leak/growing, called neither: ${s.missedLeaks.length} (target 0).`);
  if (s.unlabelled.length) say(`Unlabelled entities (a corpus error): ${s.unlabelled.length}: ${s.unlabelled.slice(0, 5).map((r) => `${r.case}: ${r.entity.id}`).join('; ')}`);
  say();
  say(s.disagreements.length ? `Disagreements (${s.disagreements.length}):` : 'No disagreements.');
  say();
  for (const d of s.disagreements) say(`- ${disagreementText(d).replace(/\n/g, '\n  ')}`);
  if (repeat > 0) {
    say();
    say(`Repeatability: each timing-sensitive \`run\` workload ${repeat} times.`);
    say();
    const r = await repeatRuns(repeat, (m) => console.log(m));
    for (const line of r.lines) say(line);
  }
  writeFileSync(join(root, 'bench', 'results', 'verdicts.md'), `${out.join('\n')}\n`);
} finally {
  if (dir && fresh && !process.env.LSBENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
