// The agent names frames while its targets run. A name that could not be had at one sample (the
// file unreadable for a moment, the symbolizer unable to start on a loaded machine) must come
// at a later one: a frame left as module+0x... for the rest of an agent's life names a leaking
// pool class wrongly on every dashboard.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram, tempDir } from '../attach/helpers.js';
import { StackTable } from '../../src/agent/stacks.js';
import { ElfFile, readElfInfo, vaddrToOffset, type FunctionSymbol } from '../../src/symbols/elf.js';

function mainOf(path: string): FunctionSymbol {
  const elf = ElfFile.open(path);
  try {
    const main = elf.functions('.symtab').find((f) => f.name === 'main');
    assert.ok(main, 'main in the symbol table');
    return main;
  } finally {
    elf.close();
  }
}

test('agent stacks: a frame whose file could not be read at first is named once it can be', async () => {
  const dir = tempDir('stack-names');
  const built = buildProgram('att-mallocloop', dir);
  const info = readElfInfo(built)!;
  const main = mainOf(built);
  // a return address inside main (the call before it is main's)
  const off = vaddrToOffset(info.loads, main.addr + 8)!;
  assert.ok(off !== undefined);

  const later = join(dir, 'appears-later');
  const table = new StackTable(100);
  const f = table.frame(later, off)!;
  const s = table.stack([f]);
  // missing for a while (more samples than a few quick retries would cover)
  for (let i = 0; i < 6; i++) await table.name();
  assert.match(f.name!, /^appears-later\+0x[0-9a-f]+$/, 'no file yet: the address');

  copyFileSync(built, later);
  for (let i = 0; i < 64 && f.name !== 'main'; i++) await table.name();
  assert.equal(f.name, 'main', 'named once the file is there');
  assert.equal(s.label, 'main', 'and the stack relabelled');
});

test('agent stacks: a frame the symbolizer answered is not asked again, and a file with no name there stays an address', async () => {
  const dir = tempDir('stack-names');
  const built = buildProgram('att-mallocloop', dir);
  const info = readElfInfo(built)!;
  const main = mainOf(built);
  const table = new StackTable(100);
  const named = table.frame(built, vaddrToOffset(info.loads, main.addr + 8)!)!;
  // the ELF header: inside the file, in no function
  const nowhere = table.frame(built, 0x10)!;
  table.stack([named]);
  for (let i = 0; i < 4; i++) await table.name();
  assert.equal(named.name, 'main');
  assert.equal(named.tries, undefined, 'a name is final');
  assert.match(nowhere.name!, /^att-mallocloop\+0x[0-9a-f]+$/);
  assert.ok((nowhere.tries ?? 0) >= 1 && (nowhere.tries ?? 0) < 4, `asked less often than every sample (${nowhere.tries} tries in 4)`);
});

test('agent stacks: a stack first seen while a naming call runs is labelled once its frames are named', async () => {
  // Naming awaits the symbolizer; the target's events keep coming meanwhile. A stack made then
  // (of a frame not yet named) was labelled with the frame's file offset when the call ended and
  // never again: a loaded run's nginx leak stayed "created at ngx_http_leak_module.so+0x12c0".
  const dir = tempDir('stack-names');
  const built = buildProgram('att-mallocloop', dir);
  const info = readElfInfo(built)!;
  const main = mainOf(built);
  const off = vaddrToOffset(info.loads, main.addr + 8)!;
  const table = new StackTable(100);
  const first = table.frame(built, 0x10)!;
  table.stack([first]);
  const naming = table.name();
  // arrives while the symbolizer runs
  const late = table.frame(built, off)!;
  const s = table.stack([late]);
  await naming;
  assert.notEqual(s.label, `att-mallocloop+0x${off.toString(16)}`, 'not labelled by an unnamed frame');
  await table.name();
  assert.equal(late.name, 'main');
  assert.equal(s.label, 'main', 'labelled by its frame\'s name');
});
