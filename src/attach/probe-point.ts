// Where in a function its entry probe goes. The kernel emulates a few instructions at a uprobe
// (push of a register, jumps, calls, conditional branches); any other instruction is copied out
// of line and single-stepped, a second trap that costs the traced process several times the
// first (~10 µs against ~0.85 µs per hit on this VM). glibc's `free` opens with `test
// %rdi,%rdi`, nginx's `ngx_palloc` and `ngx_pnalloc` with `cmp %rsi,0x20(%rdi)`: the probe
// then goes on the next instruction, when the ones it passes only set flags (test, cmp,
// endbr64): the arguments, the stack pointer and the return address on top of the stack are
// still those of the entry, so the entry and return programs read the same values.

import { ElfFile, vaddrToOffset, type ElfLoad } from '../symbols/elf.js';

/** Bytes of a ModRM operand (ModRM, SIB, displacement) at b[i], or -1. */
function modrmLength(b: Buffer, i: number): number {
  if (i >= b.length) return -1;
  const m = b[i]!;
  const mod = m >> 6;
  const rm = m & 7;
  if (mod === 3) return 1;
  let n = 1;
  if (rm === 4) {
    if (i + 1 >= b.length) return -1;
    n++;
    if (mod === 0 && (b[i + 1]! & 7) === 5) return n + 4;
  } else if (mod === 0 && rm === 5) {
    return n + 4; // rip-relative
  }
  return n + (mod === 1 ? 1 : mod === 2 ? 4 : 0);
}

/** Length of an instruction at b[i] that only sets flags (test, cmp, endbr64), else 0. */
export function flagsOnlyLength(b: Buffer, i: number): number {
  if (b[i] === 0xf3 && b[i + 1] === 0x0f && b[i + 2] === 0x1e && b[i + 3] === 0xfa) return 4; // endbr64
  let p = i;
  if (b[p] !== undefined && (b[p]! & 0xf0) === 0x40) p++; // REX
  const op = b[p];
  if (op === undefined) return 0;
  const reg = p + 1 < b.length ? (b[p + 1]! >> 3) & 7 : -1;
  let imm = -1;
  if (op === 0x84 || op === 0x85 || (op >= 0x38 && op <= 0x3b)) imm = 0; // test/cmp r/m, r
  else if ((op === 0x80 || op === 0x83) && reg === 7) imm = 1; // cmp r/m, imm8
  else if (op === 0x81 && reg === 7) imm = 4; // cmp r/m, imm32
  else if (op === 0xf6 && reg === 0) imm = 1; // test r/m8, imm8
  else if (op === 0xf7 && reg === 0) imm = 4; // test r/m, imm32
  if (imm < 0) return 0;
  const m = modrmLength(b, p + 1);
  if (m < 0) return 0;
  return p + 1 + m + imm - i;
}

/** Whether the kernel emulates the instruction at b[i] (no single-step). */
export function emulated(b: Buffer, i: number): boolean {
  const op = b[i];
  if (op === undefined) return false;
  if (op >= 0x50 && op <= 0x57) return true; // push reg
  if (op === 0x41 && b[i + 1] !== undefined && b[i + 1]! >= 0x50 && b[i + 1]! <= 0x57) return true; // push r8-r15
  if (op >= 0x70 && op <= 0x7f) return true; // jcc rel8
  if (op === 0x0f && b[i + 1] !== undefined && b[i + 1]! >= 0x80 && b[i + 1]! <= 0x8f) return true; // jcc rel32
  return op === 0xe8 || op === 0xe9 || op === 0xeb; // call, jmp
}

/** Bytes to skip from a function's entry to an emulated instruction, passing only flag-setting
 *  ones (at most two); 0 when the entry is emulated already or no such point is near. */
export function entrySkip(code: Buffer): number {
  let i = 0;
  for (let k = 0; k < 3; k++) {
    if (emulated(code, i)) return i;
    const n = flagsOnlyLength(code, i);
    if (n === 0) return 0;
    i += n;
  }
  return 0;
}

/** Whether any direct jump or call in the function's bytes could land in (0, skip]: the probe
 *  would then fire again inside one call. Bytes are scanned at every offset, not decoded, so a
 *  false match only keeps the probe at the entry. */
export function jumpedInto(code: Buffer, skip: number): boolean {
  const hit = (target: number) => target > 0 && target <= skip;
  for (let o = 0; o < code.length; o++) {
    const op = code[o]!;
    if (((op >= 0x70 && op <= 0x7f) || op === 0xeb) && o + 1 < code.length && hit(o + 2 + code.readInt8(o + 1))) return true;
    if ((op === 0xe9 || op === 0xe8) && o + 4 < code.length && hit(o + 5 + code.readInt32LE(o + 1))) return true;
    if (op === 0x0f && o + 5 < code.length && code[o + 1]! >= 0x80 && code[o + 1]! <= 0x8f && hit(o + 6 + code.readInt32LE(o + 2))) return true;
  }
  return false;
}

/** The skip of each function probed, per file (each file's symbols read once). */
export class ProbePoints {
  private readonly addrs = new Map<string, Map<string, { addr: number; size: number }> | undefined>();
  private readonly skips = new Map<string, number>();
  private readonly loads = new Map<string, ElfLoad[]>();

  /** `atEntry`: every probe on the function's first byte (LEAKSCOPE_PROBE_AT_ENTRY=1, for the bench). */
  constructor(private readonly atEntry = process.env.LEAKSCOPE_PROBE_AT_ENTRY !== undefined) {}

  skip(path: string, symbol: string): number {
    if (this.atEntry) return 0;
    const key = `${path}\u0000${symbol}`;
    let v = this.skips.get(key);
    if (v === undefined) this.skips.set(key, (v = this.compute(path, symbol)));
    return v;
  }

  /** Where the loader places the probe of `symbol` in `path`: the function's offset in the file
   *  (the loader looks nothing up itself) and the bytes to skip past its entry; undefined when
   *  the file does not define it. */
  place(path: string, symbol: string): { offset: number; skip: number } | undefined {
    const f = this.functionsOf(path)?.get(symbol);
    if (!f) return undefined;
    const offset = vaddrToOffset(this.loads.get(path) ?? [], f.addr);
    return offset === undefined ? undefined : { offset, skip: this.skip(path, symbol) };
  }

  /** The defined functions of `path` by name (versioned names by their base name too). */
  private functionsOf(path: string): Map<string, { addr: number; size: number }> | undefined {
    if (this.addrs.has(path)) return this.addrs.get(path);
    let m: Map<string, { addr: number; size: number }> | undefined;
    let elf: ElfFile | undefined;
    try {
      elf = ElfFile.open(path);
      m = new Map();
      for (const f of [...elf.functions('.dynsym'), ...elf.functions('.symtab')]) {
        if (!m.has(f.name)) m.set(f.name, f);
        const at = f.name.indexOf('@');
        if (at > 0 && !m.has(f.name.slice(0, at))) m.set(f.name.slice(0, at), f);
      }
      this.loads.set(path, elf.loads());
    } catch {
      m = undefined; // not readable, or damaged: no placement
    } finally {
      elf?.close();
    }
    this.addrs.set(path, m);
    return m;
  }

  private compute(path: string, symbol: string): number {
    let elf: ElfFile;
    try {
      elf = ElfFile.open(path);
    } catch {
      return 0;
    }
    try {
      if (elf.machine !== 62) return 0; // x86-64 only
      const f = this.functionsOf(path)?.get(symbol);
      if (!f) return 0;
      const skip = entrySkip(elf.bytesAt(f.addr, 16));
      if (skip === 0) return 0;
      const body = elf.bytesAt(f.addr, Math.min(Math.max(f.size, 16), 1 << 16));
      return jumpedInto(body, skip) ? 0 : skip;
    } catch {
      return 0; // a damaged file: the plain entry probe
    } finally {
      elf.close();
    }
  }
}
