// A small ELF64 reader for what the doctor asks of a binary: sections, function symbols, the
// first bytes of functions, the build id and DT_NEEDED. Reads only the ranges it needs.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface Section { name: string; type: number; addr: number; offset: number; size: number; link: number }
export interface FunctionSymbol { name: string; addr: number; size: number }

const SHT_NOBITS = 8;
const SHT_NOTE = 7;
const SHT_DYNAMIC = 6;
const STT_FUNC = 2;
const MAX_TABLE = 256 * 1024 * 1024; // no symbol table is this big; a corrupt header could claim it

export class ElfError extends Error {}

export class ElfFile {
  readonly sections: Section[] = [];
  readonly machine: number;
  /** ET_EXEC 2, ET_DYN 3 */
  readonly type: number;
  private readonly fd: number;
  private readonly fileSize: number;

  private constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileSize = fstatSync(this.fd).size;
      const h = this.read(0, 64);
      if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new ElfError('not an ELF file');
      if (h[4] !== 2 || h[5] !== 1) throw new ElfError('not a 64-bit little-endian ELF file');
      this.type = h.readUInt16LE(16);
      this.machine = h.readUInt16LE(18);
      const shoff = Number(h.readBigUInt64LE(40));
      const shentsize = h.readUInt16LE(58);
      const shnum = h.readUInt16LE(60);
      const shstrndx = h.readUInt16LE(62);
      if (shoff === 0 || shnum === 0) return; // no section headers (stripped hard)
      if (shentsize < 64 || shoff + shnum * shentsize > this.fileSize) throw new ElfError('corrupt section header table');
      const table = this.read(shoff, shnum * shentsize);
      const raw = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          nameOff: table.readUInt32LE(o), type: table.readUInt32LE(o + 4),
          addr: Number(table.readBigUInt64LE(o + 16)), offset: Number(table.readBigUInt64LE(o + 24)),
          size: Number(table.readBigUInt64LE(o + 32)), link: table.readUInt32LE(o + 40),
        });
      }
      const strs = shstrndx < raw.length ? this.readSection(raw[shstrndx]!) : Buffer.alloc(0);
      for (const s of raw) this.sections.push({ name: cstr(strs, s.nameOff), type: s.type, addr: s.addr, offset: s.offset, size: s.size, link: s.link });
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  static open(path: string): ElfFile {
    return new ElfFile(path);
  }

  close(): void {
    closeSync(this.fd);
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  private read(offset: number, length: number): Buffer {
    const len = Math.max(0, Math.min(length, this.fileSize - offset));
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, buf, got, len - got, offset + got);
      if (n <= 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  }

  private readSection(s: { type: number; offset: number; size: number }): Buffer {
    if (s.type === SHT_NOBITS || s.size > MAX_TABLE) return Buffer.alloc(0);
    return this.read(s.offset, s.size);
  }

  /** Function symbols of `.symtab` or `.dynsym` (defined ones, with a size). */
  functions(table: '.symtab' | '.dynsym'): FunctionSymbol[] {
    const sym = this.section(table);
    if (!sym || sym.link >= this.sections.length) return [];
    const strs = this.readSection(this.sections[sym.link]!);
    const data = this.readSection(sym);
    const out: FunctionSymbol[] = [];
    for (let o = 0; o + 24 <= data.length; o += 24) {
      const info = data[o + 4]!;
      const shndx = data.readUInt16LE(o + 6);
      if ((info & 0xf) !== STT_FUNC || shndx === 0) continue;
      const size = Number(data.readBigUInt64LE(o + 16));
      out.push({ name: cstr(strs, data.readUInt32LE(o)), addr: Number(data.readBigUInt64LE(o + 8)), size });
    }
    return out;
  }

  /** `length` bytes at virtual address `addr` (from the section holding it), or empty. */
  bytesAt(addr: number, length: number): Buffer {
    const s = this.sections.find((x) => x.type !== SHT_NOBITS && x.addr !== 0 && addr >= x.addr && addr < x.addr + x.size);
    if (!s) return Buffer.alloc(0);
    return this.read(s.offset + (addr - s.addr), Math.min(length, s.addr + s.size - addr));
  }

  /** The GNU build id as hex, or ''. */
  buildId(): string {
    for (const s of this.sections) {
      if (s.type !== SHT_NOTE) continue;
      const d = this.readSection(s);
      for (let o = 0; o + 12 <= d.length;) {
        const namesz = d.readUInt32LE(o), descsz = d.readUInt32LE(o + 4), type = d.readUInt32LE(o + 8);
        const name = d.subarray(o + 12, o + 12 + namesz);
        const descOff = o + 12 + align4(namesz);
        if (type === 3 && name.toString('latin1').startsWith('GNU')) return d.subarray(descOff, descOff + descsz).toString('hex');
        o = descOff + align4(descsz);
      }
    }
    return '';
  }

  /** DT_NEEDED library names. */
  needed(): string[] {
    const dyn = this.sections.find((s) => s.type === SHT_DYNAMIC);
    if (!dyn || dyn.link >= this.sections.length) return [];
    const strs = this.readSection(this.sections[dyn.link]!);
    const d = this.readSection(dyn);
    const out: string[] = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = Number(d.readBigInt64LE(o));
      if (tag === 0) break;
      if (tag === 1) out.push(cstr(strs, Number(d.readBigUInt64LE(o + 8))));
    }
    return out;
  }
}

function cstr(b: Buffer, off: number): string {
  if (off >= b.length) return '';
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 ? b.length : end);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
