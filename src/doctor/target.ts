// Checks of one target (a running process or an executable): symbols, frame pointers, unwind
// tables, build id, which allocator profiles apply, and the libraries it maps.
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bestMatches, matchingProfiles, type ProfileMatch } from '../attach/detect.js';
import { processInfo, runningFile, tracerOf } from '../proc/processes.js';
import { readMaps } from '../proc/maps.js';
import { check, type Check } from './check.js';
import { ElfError, ElfFile } from '../symbols/elf.js';
import { framePointers } from './frame-pointers.js';
import { discoveryChecks } from './pool-discovery.js';

const LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib'];

/** Runtimes worth naming when they are in the process: what it means for tracing them. */
const RUNTIMES: { prefix: string; symbol?: string; title: string; detail: string }[] = [
  { prefix: 'libluajit', symbol: 'luaJIT_setmode', title: 'LuaJIT is in the process', detail: 'Lua objects live in LuaJIT\'s own mmap\'d arenas: malloc tracing cannot see them (the kernel side shows the arenas as mmaps; the LuaJIT tracer sees the allocations)' },
  { prefix: 'ngx_http_lua_module', title: 'the nginx Lua module is loaded', detail: 'OpenResty-style Lua handlers run in this nginx' },
];

export interface Target { pid?: number; exe?: string }

interface Mapped { path: string; name: string }

function mappedFiles(pid: number): Mapped[] {
  const seen = new Map<string, Mapped>();
  for (const m of readMaps(pid)) {
    if (!m.path.startsWith('/') || seen.has(m.path)) continue;
    seen.set(m.path, { path: m.path.replace(/ \(deleted\)$/, ''), name: basename(m.path) });
  }
  return [...seen.values()];
}

function resolveNeeded(names: string[]): Mapped[] {
  const out: Mapped[] = [];
  for (const name of names) {
    const dir = LIB_DIRS.find((d) => existsSync(join(d, name)));
    if (dir) out.push({ path: join(dir, name), name });
  }
  return out;
}

export function targetChecks(t: Target): Check[] {
  const out: Check[] = [];
  let exe = t.exe ?? '';
  let readPath = exe;
  let libs: Mapped[] = [];
  if (t.pid !== undefined) {
    const info = processInfo(t.pid);
    if (!info) {
      out.push(check({ id: 'target-process', group: 'target', required: true, status: 'fail', title: `process ${t.pid}: not running`, detail: 'no such process (or it is a thread, not a process)' }));
      return out;
    }
    exe = info.exe || runningFile(t.pid);
    readPath = runningFile(t.pid); // the very file it runs, even if replaced on disk since
    out.push(check({ id: 'target-process', group: 'target', status: 'ok', title: `process ${t.pid}: ${info.command.slice(0, 120)}`, detail: `runs ${exe || '(unknown executable)'}, parent ${info.ppid}` }));
    const tracer = tracerOf(t.pid);
    if (tracer) out.push(check({ id: 'target-traced', group: 'target', status: 'warn', title: `process ${t.pid} is being ptraced by ${tracer}`, detail: 'a debugger holds it: while it is stopped nothing runs, so nothing is traced' }));
    libs = mappedFiles(t.pid).filter((m) => m.path !== exe);
  }

  let elf: ElfFile;
  try {
    elf = ElfFile.open(readPath);
    try {
      void elf.sections; // a corrupt section table fails this check, not a later one
    } catch (err) {
      elf.close();
      throw err;
    }
  } catch (err) {
    const why = err instanceof ElfError ? err.message : (err as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied (run as root)' : (err as Error).message;
    out.push(check({ id: 'target-elf', group: 'target', required: true, status: 'fail', title: `${exe}: cannot be read as a program`, detail: why }));
    return out;
  }
  try {
    const x86 = elf.machine === 62;
    out.push(check({
      id: 'target-elf', group: 'target', required: true, status: x86 ? 'ok' : 'fail',
      title: `${exe}: ELF ${x86 ? 'x86-64' : `machine ${elf.machine}`} ${elf.type === 3 ? 'PIE/shared object' : 'executable'}`,
      detail: x86 ? 'a native program leakscope can probe' : 'leakscope traces x86-64 programs only',
    }));

    const dyn = elf.functions('.dynsym');
    const sym = elf.functions('.symtab');
    const buildId = elf.buildId();
    const debugFile = buildId ? `/usr/lib/debug/.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug` : '';
    const hasDebug = !!debugFile && existsSync(debugFile);
    out.push(check({
      id: 'target-symbols', group: 'target',
      status: sym.length || hasDebug ? 'ok' : dyn.length ? 'warn' : 'fail',
      title: `symbols: ${dyn.length} exported (.dynsym), ${sym.length ? `${sym.length} in .symtab` : 'no .symtab (stripped)'}${hasDebug ? ', debug symbols installed' : ''}`,
      detail: sym.length || hasDebug
        ? 'every function has a name'
        : dyn.length
          ? 'exported functions have names; static ones appear as module+offset in stacks'
          : 'no function names at all: stacks show module+offset only, and profiles cannot find their functions',
      fix: sym.length || hasDebug ? undefined : 'install the package\'s -dbgsym (debug symbols) if there is one',
    }));

    const fp = framePointers(elf, sym.length ? sym : dyn);
    out.push(check({
      id: 'target-frame-pointers', group: 'target', status: fp.verdict === 'yes' ? 'ok' : 'info',
      title: `frame pointers: ${fp.verdict} (${fp.withFrame} of ${fp.sampled} sampled functions set up %rbp)`,
      detail: fp.verdict === 'yes'
        ? 'frame-pointer walks (bpftrace ustack, bpf_get_stack) work here too'
        : 'bpftrace ustack and bpf_get_stack give one good frame and then garbage on this binary; leakscope copies the stack and unwinds it with the .eh_frame tables instead',
    }));

    const eh = elf.section('.eh_frame');
    const dbg = elf.section('.debug_frame');
    const cfi = (eh && eh.size > 0) || (dbg && dbg.size > 0);
    out.push(check({
      id: 'target-eh-frame', group: 'target', status: cfi ? 'ok' : 'warn',
      title: cfi ? `unwind tables: ${[eh && eh.size ? `.eh_frame (${eh.size} bytes)` : '', dbg && dbg.size ? '.debug_frame' : ''].filter(Boolean).join(', ')}` : 'unwind tables: none',
      detail: cfi ? 'stacks through this binary are unwound exactly' : 'no .eh_frame or .debug_frame: stacks stop at this binary\'s frames',
    }));

    out.push(check({
      id: 'target-build-id', group: 'target', status: buildId ? 'info' : 'warn',
      title: buildId ? `build id ${buildId}` : 'no build id',
      detail: buildId ? 'traces record it, so a trace is symbolized against the very same binary' : 'without a build id a trace cannot tell whether the binary changed before symbolization',
    }));

    if (t.pid === undefined) libs = resolveNeeded(elf.needed());
    const names = new Set([...dyn, ...sym].map((f) => f.name));
    let found: { matches: ProfileMatch[]; tried: string[] } = { matches: [], tried: [] };
    try {
      // The very matching attach does (attach/detect.ts), with this target's libraries.
      found = matchingProfiles(readPath, (prefix) => libs.find((l) => l.name.startsWith(prefix))?.path);
    } catch { /* a broken profile: its own check says so */ }
    const { tried } = found;
    const matched = found.matches.map((m) => ({ name: m.profile.name, priority: m.priority }));
    for (const m of found.matches) {
      const p = m.profile;
      out.push(check({
        id: `profile-${p.name}`, group: 'target', status: 'ok',
        title: `allocator profile ${p.name}: matches`,
        detail: `${p.detect!.symbols.join(', ')} defined in ${p.detect!.in === 'exe' ? basename(exe) : basename(m.path)}${p.description ? ` — ${p.description.split(/[.:]\s/)[0]}` : ''}`,
      }));
    }
    // attach uses the highest-priority matches (pool profiles over the libc fallback)
    const best = Math.max(...matched.map((m) => m.priority));
    for (const m of bestMatches(found.matches)) if (m.profile.poolKind) out.push(...discoveryChecks(m.profile, { pid: t.pid, exe, libs }));
    for (const c of out) {
      const m = matched.find((x) => c.id === `profile-${x.name}`);
      if (m && m.priority < best) c.title += ' (fallback: attach prefers the higher-priority match)';
    }
    if (!matched.length) {
      out.push(check({
        id: 'profiles', group: 'target', status: 'warn', title: 'allocator profiles: none matches',
        detail: tried.length ? `tried ${tried.join(', ')}: none of their functions is defined here` : 'no allocator profiles are installed',
        fix: 'write a profile for this program\'s allocator (profiles/allocators/*.json)',
      }));
    }
    for (const r of RUNTIMES) {
      const lib = libs.find((l) => l.name.startsWith(r.prefix));
      const where = lib ? lib.path : r.symbol && names.has(r.symbol) ? `linked into ${basename(exe)}` : undefined;
      if (where) out.push(check({ id: `runtime-${r.prefix}`, group: 'target', status: 'info', title: `${r.title} (${where})`, detail: r.detail }));
    }
    if (t.pid !== undefined) {
      const noCfi: string[] = [];
      for (const l of libs) {
        if (!/\.so(\.|$)/.test(l.name)) continue;
        try {
          const e = ElfFile.open(l.path);
          const s = e.section('.eh_frame');
          if (!s || s.size === 0) noCfi.push(l.name);
          e.close();
        } catch { /* not ELF (a data file mapping) */ }
      }
      out.push(check({
        id: 'target-libraries', group: 'target', status: noCfi.length ? 'warn' : 'ok',
        title: `libraries: ${libs.length} files mapped${noCfi.length ? `, ${noCfi.length} without unwind tables` : ', all with unwind tables'}`,
        detail: noCfi.length ? `stacks stop in ${noCfi.slice(0, 8).join(', ')}` : 'stacks unwind through every mapped library',
      }));
    }
  } finally {
    elf.close();
  }
  return out;
}
