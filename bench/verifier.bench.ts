// BPF verifier margins: per program of every loader, the instructions the kernel's verifier
// processed in the program's heaviest configuration, its size and stack, against the limits.
// Writes bench/results/verifier.json; BENCHMARKS.md's "BPF verifier margins" table is generated
// from it (bench/table.ts). Needs root (it loads the programs) and the native parts built.
// Exit 1 when a program does not load or is within MARGIN× of a limit.
import { LOADERS, MARGIN, runVerify, withinMargin, worstPerProgram } from '../src/doctor/verifier.js';
import { root, startBench } from './support/record.js';

const bench = startBench('verifier');
const fmt = (n: number) => n.toLocaleString('en-US');
const loaders: { loader: string; failed?: string; programs: { program: string; config: string; verifiedInsns: number; insnLimit: number; insns: number; stack: number; stackLimit: number }[] }[] = [];
let bad = 0;
for (const l of LOADERS) {
  const r = runVerify(root, l);
  if (r.failed || r.errors.length) {
    bad++;
    const failed = r.failed ?? r.errors.map((e) => `${e.config}: ${e.error}`).join('; ');
    console.log(`${l.name}: does not load: ${failed}`);
    loaders.push({ loader: l.name, failed, programs: [] });
    continue;
  }
  const programs = worstPerProgram(r.loads).sort((a, b) => b.verified_insns - a.verified_insns);
  for (const p of programs) {
    if (!withinMargin(p)) bad++;
    console.log(`${l.name} ${p.program}: ${fmt(p.verified_insns)} processed (${p.config}), ${(p.insn_limit / p.verified_insns).toFixed(0)}× under the limit, ${fmt(p.insns)} instructions, stack ${p.stack}`);
  }
  loaders.push({
    loader: l.name,
    programs: programs.map((p) => ({ program: p.program, config: p.config, verifiedInsns: p.verified_insns, insnLimit: p.insn_limit, insns: p.insns, stack: p.stack, stackLimit: p.stack_limit })),
  });
}
bench.finish({ margin: MARGIN, loaders });
if (bad) {
  console.log(`\n${bad} program(s) do not load or are within ${MARGIN}× of a limit`);
  process.exit(1);
}
