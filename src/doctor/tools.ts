// Checks of the external tools leakscope uses or imports from.
import { check, type Check } from './check.js';
import { which } from './which.js';

const TOOLS: { names: string[]; what: string; required: boolean; pkg: string }[] = [
  { names: ['addr2line', 'llvm-symbolizer'], what: 'symbolizes addresses into function, file and line', required: true, pkg: 'binutils or llvm' },
  { names: ['bpftrace'], what: 'the kernel side (`leakscope kernel`, `attach --kernel`): mmap/brk/shm tracepoints, OOM, reclaim', required: false, pkg: 'bpftrace' },
  { names: ['gdb'], what: 'not needed; handy to compare stacks', required: false, pkg: 'gdb' },
  { names: ['heaptrack'], what: 'only to produce heaptrack files to import', required: false, pkg: 'heaptrack' },
  { names: ['valgrind'], what: 'only to produce valgrind XML to import', required: false, pkg: 'valgrind' },
];

export function toolChecks(): Check[] {
  return TOOLS.map((t) => {
    const found = t.names.map((n) => which(n)).filter((p): p is string => !!p);
    return check({
      id: `tool-${t.names[0]}`, group: 'tools', required: t.required,
      status: found.length ? 'ok' : t.required ? 'fail' : 'info',
      title: `${t.names.join(' / ')}: ${found.length ? found.join(', ') : 'not installed'}`,
      detail: t.what,
      fix: found.length ? undefined : `apt-get install ${t.pkg}`,
    });
  });
}
