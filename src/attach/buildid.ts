// The GNU build id of an ELF file (its PT_NOTE segments), so MODULE records let symbolizers
// check they read the same file the process ran.

import { closeSync, openSync, readSync } from 'node:fs';

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  return b.subarray(0, n);
}

/** Hex build id, or '' when the file has none or is not a 64-bit little-endian ELF. */
export function readBuildId(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return '';
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phnum > 256 || phentsize < 56) return '';
    const ph = readAt(fd, phoff, phentsize * phnum);
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      if (o + 56 > ph.length || ph.readUInt32LE(o) !== 4 /* PT_NOTE */) continue;
      const off = Number(ph.readBigUInt64LE(o + 8));
      const size = Math.min(Number(ph.readBigUInt64LE(o + 32)), 65536);
      const notes = readAt(fd, off, size);
      let p = 0;
      while (p + 12 <= notes.length) {
        const namesz = notes.readUInt32LE(p);
        const descsz = notes.readUInt32LE(p + 4);
        const type = notes.readUInt32LE(p + 8);
        const nameOff = p + 12;
        const descOff = nameOff + ((namesz + 3) & ~3);
        if (descOff + descsz > notes.length) break;
        if (type === 3 && namesz === 4 && notes.toString('latin1', nameOff, nameOff + 3) === 'GNU') {
          return notes.toString('hex', descOff, descOff + descsz);
        }
        p = descOff + ((descsz + 3) & ~3);
      }
    }
    return '';
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}
