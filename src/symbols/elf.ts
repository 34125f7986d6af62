// The one ELF64 reader of leakscope. Reads only the ranges it is asked for, lazily:
//   - program headers: PT_LOAD segments (to turn a file offset, which MODULE records give, into
//     the virtual address symbolizers expect) and PT_NOTE (the GNU build id);
//   - section headers: sections, function symbols, the bytes of functions and DT_NEEDED, for the
//     doctor's checks (frame pointers, symbols, unwind tables, libraries).
// A part that is damaged fails alone: a corrupt section table does not hide the build id.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface Section { name: string; type: number; addr: number; offset: number; size: number; link: number }
export interface FunctionSymbol { name: string; addr: number; size: number }

export interface ElfLoad {
  offset: number;
  vaddr: number;
  filesz: number;
}

export interface ElfInfo {
  buildId: string;
  loads: ElfLoad[];
}

const SHT_DYNAMIC = 6;
const SHT_NOTE = 7;
const SHT_NOBITS = 8;
const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;
const STT_FUNC = 2;
const MAX_TABLE = 256 * 1024 * 1024; // no symbol table is this big; a corrupt header could claim it
const MAX_NOTES = 1 << 20;
const MAX_PHNUM = 512;

export class ElfError extends Error {}

interface Segment { type: number; offset: number; vaddr: number; filesz: number }

export class ElfFile {
  readonly machine: number;
  /** ET_EXEC 2, ET_DYN 3 */
  readonly type: number;
  private readonly fd: number;
  private readonly fileSize: number;
  private readonly header: Buffer;
  private sectionList: Section[] | undefined;
  private segmentList: Segment[] | undefined;

  private constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileSize = fstatSync(this.fd).size;
      const h = this.read(0, 64);
      if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46) throw new ElfError('not an ELF file');
      if (h[4] !== 2 || h[5] !== 1) throw new ElfError('not a 64-bit little-endian ELF file');
      this.header = h;
      this.type = h.readUInt16LE(16);
      this.machine = h.readUInt16LE(18);
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /** Opens a 64-bit little-endian ELF file; throws ElfError for anything else (or the fs error). */
  static open(path: string): ElfFile {
    return new ElfFile(path);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Section headers (none for a file stripped of them); throws ElfError when the table is corrupt. */
  get sections(): Section[] {
    this.sectionList ??= this.readSections();
    return this.sectionList;
  }

  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** PT_LOAD segments; throws ElfError when the program header table is implausible. */
  loads(): ElfLoad[] {
    return this.segments().filter((s) => s.type === PT_LOAD).map(({ offset, vaddr, filesz }) => ({ offset, vaddr, filesz }));
  }

  /** The GNU build id as hex, or '': from the PT_NOTE segments, else from the note sections. */
  buildId(): string {
    let segments: Segment[] = [];
    try {
      segments = this.segments();
    } catch { /* no usable program headers: the sections may still say */ }
    for (const s of segments) {
      if (s.type !== PT_NOTE || s.filesz >= MAX_NOTES) continue;
      const id = noteBuildId(this.read(s.offset, s.filesz));
      if (id) return id;
    }
    try {
      for (const s of this.sections) {
        if (s.type !== SHT_NOTE) continue;
        const id = noteBuildId(this.readSection(s));
        if (id) return id;
      }
    } catch { /* a corrupt section table: no id */ }
    return '';
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

  /** The virtual address of a defined symbol of any type (a function, or a global variable such
   *  as httpd's `ap_pglobal`), from `.dynsym` then `.symtab`; undefined when neither defines it. */
  symbolAddress(name: string): number | undefined {
    for (const table of ['.dynsym', '.symtab']) {
      const sym = this.section(table);
      if (!sym || sym.link >= this.sections.length) continue;
      const strs = this.readSection(this.sections[sym.link]!);
      const data = this.readSection(sym);
      const want = Buffer.from(`${name}\0`, 'latin1');
      for (let o = 0; o + 24 <= data.length; o += 24) {
        if (data.readUInt16LE(o + 6) === 0) continue; // undefined here: another module's
        const at = data.readUInt32LE(o);
        if (strs.compare(want, 0, want.length, at, at + want.length) === 0) return Number(data.readBigUInt64LE(o + 8));
      }
    }
    return undefined;
  }

  /** `length` bytes at virtual address `addr` (from the section holding it), or empty. */
  bytesAt(addr: number, length: number): Buffer {
    const s = this.sections.find((x) => x.type !== SHT_NOBITS && x.addr !== 0 && addr >= x.addr && addr < x.addr + x.size);
    if (!s) return Buffer.alloc(0);
    return this.read(s.offset + (addr - s.addr), Math.min(length, s.addr + s.size - addr));
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

  private readSections(): Section[] {
    const h = this.header;
    const shoff = Number(h.readBigUInt64LE(40));
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);
    const shstrndx = h.readUInt16LE(62);
    if (shoff === 0 || shnum === 0) return []; // no section headers (stripped hard)
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
    return raw.map((s) => ({ name: cstr(strs, s.nameOff), type: s.type, addr: s.addr, offset: s.offset, size: s.size, link: s.link }));
  }

  private segments(): Segment[] {
    if (this.segmentList) return this.segmentList;
    const h = this.header;
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    if (phnum > MAX_PHNUM || phentsize < 56) throw new ElfError('corrupt program header table');
    const ph = this.read(phoff, phentsize * phnum);
    const out: Segment[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (o + 56 > ph.length) break; // a table cut by the end of the file: what is there
      out.push({
        type: ph.readUInt32LE(o),
        offset: Number(ph.readBigUInt64LE(o + 8)),
        vaddr: Number(ph.readBigUInt64LE(o + 16)),
        filesz: Number(ph.readBigUInt64LE(o + 32)),
      });
    }
    this.segmentList = out;
    return out;
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
}

/** What symbolization needs of a file: its build id and loadable segments; undefined when it
 *  cannot be read or is not a 64-bit little-endian ELF file. */
export function readElfInfo(path: string): ElfInfo | undefined {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(path);
  } catch {
    return undefined;
  }
  try {
    return { loads: elf.loads(), buildId: elf.buildId() };
  } catch {
    return undefined;
  } finally {
    elf.close();
  }
}

/** Which of `wanted` the file at `path` defines as functions (in `.dynsym` or `.symtab`; a
 *  versioned name such as `malloc@@GLIBC_2.2.5` counts as its base name). Empty when the file
 *  cannot be read. The one answer to "does this binary define these" for attach, doctor and the
 *  LuaJIT tracer, which are told what to probe instead of looking for themselves. */
export function definedFunctions(path: string, wanted: readonly string[]): Set<string> {
  const want = new Set(wanted);
  const got = new Set<string>();
  let elf: ElfFile;
  try {
    elf = ElfFile.open(path);
  } catch {
    return got;
  }
  try {
    for (const table of ['.dynsym', '.symtab'] as const) {
      for (const f of elf.functions(table)) {
        const at = f.name.indexOf('@');
        const name = at < 0 ? f.name : f.name.slice(0, at);
        if (want.has(name)) got.add(name);
      }
    }
  } catch {
    // a damaged symbol table: what was found before it
  } finally {
    elf.close();
  }
  return got;
}

/** The virtual address (as in the file's symbol tables) of a file offset, or undefined. */
export function offsetToVaddr(info: ElfInfo, fileOffset: number): number | undefined {
  for (const l of info.loads) {
    if (fileOffset >= l.offset && fileOffset < l.offset + l.filesz) return fileOffset - l.offset + l.vaddr;
  }
  return undefined;
}

/** The file offset of a virtual address (as in the file's symbol tables), or undefined. */
export function vaddrToOffset(loads: ElfLoad[], vaddr: number): number | undefined {
  for (const l of loads) {
    if (vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz) return vaddr - l.vaddr + l.offset;
  }
  return undefined;
}

/** The GNU build id in a block of ELF notes, or ''. */
function noteBuildId(notes: Buffer): string {
  let p = 0;
  while (p + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(p);
    const descsz = notes.readUInt32LE(p + 4);
    const type = notes.readUInt32LE(p + 8);
    const name = p + 12;
    const desc = name + align4(namesz);
    if (desc + descsz > notes.length) break;
    if (type === NT_GNU_BUILD_ID && namesz === 4 && notes.toString('latin1', name, name + 3) === 'GNU') {
      return notes.subarray(desc, desc + descsz).toString('hex');
    }
    p = desc + align4(descsz);
  }
  return '';
}

function cstr(b: Buffer, off: number): string {
  if (off >= b.length) return '';
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 ? b.length : end);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
