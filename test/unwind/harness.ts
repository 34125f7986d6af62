// Shared by the unwinder tests: builds the native parts and the test program, runs gdb on a
// stopped process next to ls-unwind-test, and parses both sides into comparable frame lists.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname;
export const unwindTool = join(root, 'native/unwind/build/ls-unwind-test');
import { testDir } from '../support/tmp.js';

const gdbFrames = join(root, 'test/unwind/gdb-frames.py');

export function buildNative(): void {
  execFileSync('make', ['-s', '-C', join(root, 'native/unwind')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function tempDir(prefix: string): string {
  return testDir(prefix);
}

/** Compiles test/programs/NAME.c like Debian builds its packages: -O2, no frame pointers. */
export function buildProgram(name: string, dir: string): string {
  const out = join(dir, name);
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', out, join(root, 'test/programs', `${name}.c`)]);
  return out;
}

export interface OurFrame { pc: bigint; module: string; vaddr: bigint; sym: string }

export function parseOurs(text: string): OurFrame[] {
  const out: OurFrame[] = [];
  for (const line of text.split('\n')) {
    const m = /^(0x[0-9a-f]+) (\S+) (0x[0-9a-f]+) (\S+)$/.exec(line);
    if (m) out.push({ pc: BigInt(m[1]!), module: m[2]!, vaddr: BigInt(m[3]!), sym: m[4]! });
  }
  return out;
}

/** ls-unwind-test's frames for each --len run of gdbSideBySide, by length. */
export function parseOursByLen(text: string): Map<number, OurFrame[]> {
  const out = new Map<number, OurFrame[]>();
  const parts = text.split(/^LSUNWIND (\d+)$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) out.set(Number(parts[i]), parseOurs(parts[i + 1]!));
  return out;
}

export function parseGdb(text: string): { pc: bigint; name: string }[] {
  return [...text.matchAll(/^GDBFRAME (0x[0-9a-f]+) (\S+)$/gm)].map((m) => ({ pc: BigInt(m[1]!), name: m[2]! }));
}

/** Starts a program and resolves with it once it printed its first line (its pid). */
export function startProgram(path: string, args: string[] = []): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    child.once('error', reject);
    child.stdout!.once('data', () => resolve(child));
  });
}

/**
 * Attaches gdb to `pid`, stops it at `breakpoint` (an address expression, e.g. `*unw_leaf`:
 * the function's first instruction, where a uprobe fires) or where it is when none is given,
 * and, in that same stop, runs ls-unwind-test on the registers gdb sees and the stack bytes
 * then in memory, and prints gdb's own frames. Returns gdb's whole output.
 */
export function gdbSideBySide(pid: number, opts: { breakpoint?: string; lens?: number[]; timeoutMs?: number }): Promise<string> {
  const lens = opts.lens ?? [32768];
  // No separate debug files (libc6-dbg): gdb then unwinds with the binaries' own .eh_frame and
  // symbols like we do, and attaches in a fraction of the time (it matters on a loaded machine).
  const args = ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-iex', 'set debug-file-directory /nonexistent', '-p', String(pid)];
  if (opts.breakpoint) args.push('-ex', `break ${opts.breakpoint}`, '-ex', 'continue');
  for (const len of lens) {
    args.push('-ex', `echo LSUNWIND ${len}\\n`);
    args.push('-ex', `eval "shell ${unwindTool} mem %d 0x%lx 0x%lx 0x%lx --len ${len}", ${pid}, $pc, $sp, $rbp`);
  }
  args.push('-ex', `source ${gdbFrames}`);
  return new Promise((resolve, reject) => {
    const gdb = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    gdb.stdout.on('data', (d: Buffer) => (out += d.toString()));
    gdb.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => gdb.kill('SIGKILL'), opts.timeoutMs ?? 45000);
    gdb.once('error', reject);
    gdb.once('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** addr2line's function name for an address of an ELF file. */
export function addr2fn(file: string, vaddrs: bigint[]): string[] {
  const out = execFileSync('addr2line', ['-f', '-e', file, ...vaddrs.map((a) => '0x' + a.toString(16))]).toString();
  return out.split('\n').filter((_, i) => i % 2 === 0).slice(0, vaddrs.length);
}

export function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
