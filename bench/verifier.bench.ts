// BPF verifier margins: per program of every loader, the instructions the kernel's verifier
// processed in the program's heaviest configuration, its size and stack, against the limits.
// Prints the markdown table kept in BENCHMARKS.md ("BPF verifier margins"), with the commit and
// the kernel. Needs root (it loads the programs) and the native parts built.
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { LOADERS, MARGIN, runVerify, withinMargin, worstPerProgram } from '../src/doctor/verifier.js';

const root = new URL('..', import.meta.url).pathname;
let commit = 'unknown';
try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
const fmt = (n: number) => n.toLocaleString('en-US');
const lines = [
  `Commit ${commit}, kernel ${release()}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (\`npm run bench -- verifier\`).`,
  '',
  '| loader | program | processed instructions (heaviest configuration) | under the 1,000,000 limit | size (instructions) | stack (bytes, of 512) |',
  '|---|---|---|---|---|---|',
];
let bad = 0;
for (const l of LOADERS) {
  const r = runVerify(root, l);
  if (r.failed || r.errors.length) {
    bad++;
    lines.push(`| ${l.name} | — | does not load: ${(r.failed ?? r.errors.map((e) => `${e.config}: ${e.error}`).join('; ')).replace(/\|/g, '\\|')} | | | |`);
    continue;
  }
  for (const p of worstPerProgram(r.loads).sort((a, b) => b.verified_insns - a.verified_insns)) {
    if (!withinMargin(p)) bad++;
    lines.push(`| ${l.name} | ${p.program} | ${fmt(p.verified_insns)} (${p.config}) | ${(p.insn_limit / p.verified_insns).toFixed(0)}× | ${fmt(p.insns)} | ${p.stack} |`);
  }
}
console.log(lines.join('\n'));
if (bad) {
  console.log(`\n${bad} program(s) do not load or are within ${MARGIN}× of a limit`);
  process.exit(1);
}
