// Checks of leakscope's own native parts (built by `npm run build` from native/<part>/).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { check, type Check } from './check.js';
import { rebuildCommand } from './packages.js';

/** Why a part (native/PART or PART/SUB) is not built, and the fix: the packages it lacks, or its build failed. */
function notBuilt(root: string, part: string, missing: { pkg: string; parts: string[] }[] | string): { why: string; fix: string } {
  const lack = typeof missing === 'string' ? [] : missing.filter((m) => m.parts.includes(part)).map((m) => m.pkg);
  if (lack.length) return { why: `not built: missing ${lack.join(' ')}`, fix: `apt-get install -y ${lack.join(' ')}, then ${rebuildCommand(root)}` };
  return { why: 'not built', fix: `${rebuildCommand(root)} shows why its build failed` };
}

/** What each part is for and the file that shows it was built. Parts not listed are checked generically. */
const PARTS: Record<string, { what: string; artifact: string; required: boolean }> = {
  bpf: { what: 'BPF loader for `attach` (uprobes on the allocator functions)', artifact: 'leakscope-bpf', required: true },
  unwind: { what: 'CFI stack unwinder (full stacks on binaries without frame pointers)', artifact: 'libleakscope-unwind.so', required: true },
  recorder: { what: 'in-process recorder for `run` (LD_PRELOAD)', artifact: 'libleakscope.so', required: false },
  luajit: { what: 'LuaJIT allocator tracer', artifact: 'lstrace-luajit', required: false },
};

export function nativeChecks(root: string, missing: { pkg: string; parts: string[] }[] | string = []): Check[] {
  const dir = join(root, 'native');
  const parts = existsSync(dir) ? readdirSync(dir).filter((p) => existsSync(join(dir, p, 'Makefile'))).sort() : [];
  const out = parts.map((part) => {
    const known = PARTS[part];
    const build = join(dir, part, 'build');
    const files = existsSync(build) ? readdirSync(build).filter((f) => !f.endsWith('.o') && !f.endsWith('.h')) : [];
    const built = known ? files.includes(known.artifact) : files.length > 0;
    const nb = built ? undefined : notBuilt(root, part, missing);
    return check({
      id: `native-${part}`, group: 'native', required: known?.required ?? false,
      status: built ? 'ok' : known?.required ? 'fail' : 'warn',
      title: `native/${part}: ${built ? `built (${known ? known.artifact : files.join(', ')})` : nb!.why}`,
      detail: known?.what ?? 'native part',
      fix: nb?.fix,
    });
  });
  // Optional extras of a part: built only when their own toolchain is there.
  for (const x of EXTRAS) {
    if (!parts.includes(x.part) || !existsSync(join(dir, x.part, 'build', PARTS[x.part]!.artifact))) continue;
    const built = existsSync(join(dir, x.part, 'build', x.artifact));
    const nb = built ? undefined : notBuilt(root, x.sub, missing);
    out.push(check({
      id: `native-${x.part}-${x.artifact}`, group: 'native', status: built ? 'ok' : 'warn',
      title: `native/${x.part}: ${x.artifact} ${built ? 'built' : nb!.why}`, detail: built ? x.what : x.without,
      fix: nb?.fix,
    }));
  }
  return out;
}

const EXTRAS = [
  { part: 'unwind', sub: 'unwind/kstack', artifact: 'ls-kstack', what: 'kernel side: mmap events with whole user stacks', without: 'kernel side: mmap events come without stacks' },
];
