// Batch address resolution for one ELF file with the machine's symbolizer: llvm-symbolizer when
// installed, else binutils addr2line. One process per module, addresses on stdin, inlined
// frames expanded and C++ names demangled.

import { spawn, spawnSync } from 'node:child_process';

/** One source location; a pc resolves to several when functions were inlined (innermost first). */
export interface Location {
  fn: string;
  file: string;
  line: number;
}

export type SymbolizerTool = 'llvm-symbolizer' | 'addr2line';

let detected: SymbolizerTool | null | undefined;

/** The symbolizer this machine has, or null when neither is installed. Only "not installed" is
 * remembered: a start that failed for want of a resource (a loaded machine) is tried again at
 * the next call, or a long-running agent would name nothing for the rest of its life. */
export function detectSymbolizer(): SymbolizerTool | null {
  if (detected !== undefined) return detected;
  let transient = false;
  for (const tool of ['llvm-symbolizer', 'addr2line'] as const) {
    const r = spawnSync(tool, ['--version'], { stdio: 'ignore', timeout: 30_000 });
    if (r.status === 0) return (detected = tool);
    const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
    if (code !== 'ENOENT' && r.status !== 127) transient = true;
  }
  if (transient) return null;
  return (detected = null);
}

function clean(s: string): string {
  return s === '??' || s === '' ? '' : s;
}

/** Splits `file:line[:col]` (file names may contain ':'). */
function fileLine(s: string, withColumn: boolean): { file: string; line: number } {
  let rest = s.trim();
  const disc = rest.indexOf(' (discriminator');
  if (disc >= 0) rest = rest.slice(0, disc);
  if (withColumn) {
    const m = /^(.*):(\d+|\?):(\d+)$/.exec(rest);
    if (m) return { file: clean(m[1]!), line: m[2] === '?' ? 0 : Number(m[2]) };
  }
  const m = /^(.*):(\d+|\?)$/.exec(rest);
  if (m) return { file: clean(m[1]!), line: m[2] === '?' ? 0 : Number(m[2]) };
  return { file: clean(rest), line: 0 };
}

/** A symbolizer that has not answered in this long is stuck: killed, and its run fails. */
const RUN_TIMEOUT_MS = 120_000;

/** The tool's output; rejects when it could not run or did not finish (killed, a signal, a
 * non-zero exit), so that callers can tell "no name there" from "not asked". */
function run(tool: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'ignore'], timeout: RUN_TIMEOUT_MS });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${tool} ${signal ? `killed by ${signal}` : `exited with ${code}`}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Resolves virtual addresses of `path`; result[i] lists the locations of vaddrs[i], innermost first. */
export async function resolveAddresses(path: string, vaddrs: readonly number[], tool: SymbolizerTool): Promise<Location[][]> {
  if (vaddrs.length === 0) return [];
  const input = vaddrs.map((a) => `0x${a.toString(16)}`).join('\n') + '\n';
  const out: Location[][] = [];
  if (tool === 'llvm-symbolizer') {
    const text = await run(tool, ['--obj', path, '--inlining', '--demangle', '--functions=linkage', '--print-address'], input);
    // Groups separated by blank lines: the address, then (function, file:line:col) pairs.
    for (const group of text.split(/\n\s*\n/)) {
      const lines = group.split('\n').filter((l) => l.length > 0);
      if (lines.length === 0 || !/^0x[0-9a-f]+$/i.test(lines[0]!)) continue;
      const locs: Location[] = [];
      for (let i = 1; i + 1 < lines.length; i += 2) locs.push({ fn: clean(lines[i]!), ...fileLine(lines[i + 1]!, true) });
      out.push(locs);
    }
  } else {
    const text = await run(tool, ['-e', path, '-a', '-f', '-i', '-C'], input);
    let cur: Location[] | undefined;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (/^0x[0-9a-f]+$/i.test(l)) {
        cur = [];
        out.push(cur);
      } else if (cur && l.length > 0 && i + 1 < lines.length) {
        cur.push({ fn: clean(l), ...fileLine(lines[++i]!, false) });
      }
    }
  }
  // A symbolizer that died part-way leaves the rest unresolved rather than misaligned.
  while (out.length < vaddrs.length) out.push([]);
  return out.slice(0, vaddrs.length);
}
