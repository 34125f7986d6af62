// What symbolization needs from an ELF file: its GNU build id and its PT_LOAD segments (to turn
// a file offset, which MODULE records give, into the virtual address symbolizers expect).

import { closeSync, openSync, readSync } from 'node:fs';

export interface ElfLoad {
  offset: number;
  vaddr: number;
  filesz: number;
}

export interface ElfInfo {
  buildId: string;
  loads: ElfLoad[];
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  return b.subarray(0, n);
}

/** Reads a 64-bit little-endian ELF's build id and loadable segments; undefined when unreadable. */
export function readElfInfo(path: string): ElfInfo | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phnum > 512 || phentsize < 56) return undefined;
    const ph = readAt(fd, phoff, phentsize * phnum);
    const loads: ElfLoad[] = [];
    let buildId = '';
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (o + 56 > ph.length) break;
      const type = ph.readUInt32LE(o);
      const offset = Number(ph.readBigUInt64LE(o + 8));
      const vaddr = Number(ph.readBigUInt64LE(o + 16));
      const filesz = Number(ph.readBigUInt64LE(o + 32));
      if (type === 1 /* PT_LOAD */) loads.push({ offset, vaddr, filesz });
      else if (type === 4 /* PT_NOTE */ && !buildId && filesz < 1 << 20) buildId = noteBuildId(readAt(fd, offset, filesz));
    }
    return { buildId, loads };
  } finally {
    closeSync(fd);
  }
}

function noteBuildId(notes: Buffer): string {
  let p = 0;
  while (p + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(p);
    const descsz = notes.readUInt32LE(p + 4);
    const type = notes.readUInt32LE(p + 8);
    const name = p + 12;
    const desc = name + ((namesz + 3) & ~3);
    if (desc + descsz > notes.length) break;
    if (type === 3 && namesz === 4 && notes.toString('latin1', name, name + 3) === 'GNU') {
      return notes.subarray(desc, desc + descsz).toString('hex');
    }
    p = desc + ((descsz + 3) & ~3);
  }
  return '';
}

/** The virtual address (as in the file's symbol tables) of a file offset, or undefined. */
export function offsetToVaddr(info: ElfInfo, fileOffset: number): number | undefined {
  for (const l of info.loads) {
    if (fileOffset >= l.offset && fileOffset < l.offset + l.filesz) return fileOffset - l.offset + l.vaddr;
  }
  return undefined;
}
