// The one ELF reader (src/symbols/elf.ts) against readelf on real binaries, and on damaged
// copies: each part fails alone (a corrupt section table does not hide the build id or the
// segments symbolization needs; unusable program headers do not hide the build-id section).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ElfError, ElfFile, offsetToVaddr, readElfInfo } from '../../src/symbols/elf.js';

const root = new URL('../..', import.meta.url).pathname;
let dir = '';
let prog = '';

const readelf = (...args: string[]) => execFileSync('readelf', ['-W', ...args], { encoding: 'utf8' });
const buildIdOf = (path: string) => /Build ID: ([0-9a-f]+)/.exec(readelf('-n', path))?.[1] ?? '';
const loadsOf = (path: string) => [...readelf('-l', path).matchAll(/^\s+LOAD\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x[0-9a-f]+ 0x([0-9a-f]+)/gm)]
  .map((m) => ({ offset: parseInt(m[1]!, 16), vaddr: parseInt(m[2]!, 16), filesz: parseInt(m[3]!, 16) }));

/** A copy of `src` with `bytes` written at `offset`. */
function patched(src: string, name: string, offset: number, bytes: Buffer): string {
  const b = readFileSync(src);
  bytes.copy(b, offset);
  const out = join(dir, name);
  writeFileSync(out, b);
  return out;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-elf-'));
  prog = join(dir, 'prog');
  execFileSync('gcc', ['-O2', '-g', '-Wl,--build-id', '-o', prog, join(root, 'test/programs/unw-deep.c')]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('build id, loadable segments and file offsets agree with readelf (our program, nginx, libc)', () => {
  for (const path of [prog, '/usr/sbin/nginx', '/lib/x86_64-linux-gnu/libc.so.6']) {
    const info = readElfInfo(path);
    assert.ok(info, path);
    assert.match(info.buildId, /^[0-9a-f]{40}$/, path);
    assert.equal(info.buildId, buildIdOf(path), path);
    assert.deepEqual(info.loads, loadsOf(path), path);
    const elf = ElfFile.open(path);
    try {
      assert.equal(elf.buildId(), info.buildId, `${path}: one build id whichever way it is asked`);
    } finally {
      elf.close();
    }
    const text = info.loads[1]!;
    assert.equal(offsetToVaddr(info, text.offset + 0x10), text.vaddr + 0x10);
  }
  assert.equal(offsetToVaddr({ buildId: '', loads: [] }, 0x1000), undefined);
});

test('sections, function symbols and DT_NEEDED agree with readelf', () => {
  const elf = ElfFile.open(prog);
  try {
    const expected = [...readelf('-S', prog).matchAll(/^\s+\[\s*[1-9]\d*\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)/gm)]
      .map((m) => ({ name: m[1]!, addr: parseInt(m[2]!, 16), size: parseInt(m[4]!, 16) }));
    assert.deepEqual(elf.sections.slice(1).map((s) => ({ name: s.name, addr: s.addr, size: s.size })), expected);
    const main = elf.functions('.symtab').find((f) => f.name === 'main');
    const nm = /^([0-9a-f]+) T main$/m.exec(execFileSync('nm', [prog], { encoding: 'utf8' }));
    assert.ok(main && nm);
    assert.equal(main.addr, parseInt(nm[1]!, 16));
    assert.equal(elf.bytesAt(main.addr, 4).length, 4);
    assert.deepEqual(elf.needed(), ['libc.so.6']);
  } finally {
    elf.close();
  }
});

test('damaged files: each part fails alone; not ELF is undefined, never a throw', () => {
  const info = readElfInfo(prog)!;
  // e_shentsize = 1: the section table is unusable; the program headers are intact.
  const noSections = patched(prog, 'no-sections', 58, Buffer.from([1, 0]));
  assert.deepEqual(readElfInfo(noSections), info);
  const e1 = ElfFile.open(noSections);
  try {
    assert.throws(() => e1.sections, ElfError);
    assert.equal(e1.buildId(), info.buildId);
  } finally {
    e1.close();
  }
  // e_phentsize = 1: no program headers; the build id is still in its note section.
  const noSegments = patched(prog, 'no-segments', 54, Buffer.from([1, 0]));
  assert.equal(readElfInfo(noSegments), undefined, 'symbolization needs the segments');
  const e2 = ElfFile.open(noSegments);
  try {
    assert.equal(e2.buildId(), info.buildId);
    assert.throws(() => e2.loads(), ElfError);
  } finally {
    e2.close();
  }
  const elf32 = patched(prog, 'elf32', 4, Buffer.from([1]));
  assert.throws(() => ElfFile.open(elf32), /not a 64-bit little-endian ELF file/);
  assert.throws(() => ElfFile.open('/etc/hostname'), /not an ELF file/);
  for (const p of [elf32, '/etc/hostname', dir, join(dir, 'missing')]) assert.equal(readElfInfo(p), undefined, p);
  const stripped = join(dir, 'stripped');
  copyFileSync(prog, stripped);
  execFileSync('strip', ['--strip-all', stripped]);
  const e3 = ElfFile.open(stripped);
  try {
    assert.deepEqual(e3.functions('.symtab'), []);
    assert.ok(e3.functions('.dynsym').length > 0 || e3.needed().length > 0);
    assert.equal(e3.buildId(), info.buildId, 'strip keeps the build id');
  } finally {
    e3.close();
  }
});
