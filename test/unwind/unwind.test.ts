// ls_unwind against gdb on the same stopped process: a -O2 -fomit-frame-pointer program with a
// known call chain (through libc's qsort), the same program blocked in a syscall, and the
// truncation when the copied stack slice is short.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import {
  addr2fn, buildNative, buildProgram, gdbSideBySide, parseGdb, parseOurs, parseOursByLen,
  startProgram, stop, tempDir, unwindTool,
} from './harness.js';

let dir = '';
let prog = '';
before(() => {
  buildNative();
  dir = tempDir('ls-unw-');
  prog = buildProgram('unw-deep', dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('at a function entry (where uprobes fire) the stack matches gdb frame for frame', async (t) => {
  const child = await startProgram(prog);
  t.after(() => stop(child));
  const out = await gdbSideBySide(child.pid!, { breakpoint: '*unw_leaf', lens: [32768, 200] });
  const gdb = parseGdb(out);
  const runs = parseOursByLen(out);
  const ours = runs.get(32768)!;
  assert.ok(gdb.length >= 14, `gdb saw the whole chain:\n${out}`);
  // gdb stops at main; ours goes on into libc's start code. Up to main they are the same pcs.
  assert.deepEqual(ours.slice(0, gdb.length).map((f) => f.pc), gdb.map((f) => f.pc), out);
  assert.ok(ours.length >= gdb.length);

  // The program's own frames, symbolized with addr2line (return addresses at pc - 1).
  const mine = ours.map((f, i) => ({ ...f, i })).filter((f) => f.module === prog);
  const names = addr2fn(prog, mine.map((f) => (f.i === 0 ? f.vaddr : f.vaddr - 1n)));
  const chain = names.slice(0, names.indexOf('main') + 1);
  assert.deepEqual(chain, [
    'unw_leaf', 'compare', 'recurse', 'recurse', 'recurse', 'recurse', 'recurse',
    'level_two', 'level_one', 'run_forever', 'main',
  ]);
  // compare is called back from inside libc's qsort: libc frames sit between compare and recurse.
  const idxCompare = ours.findIndex((f) => f.sym === 'compare');
  assert.ok(ours[idxCompare + 1]!.module.includes('libc.so'), 'libc frames unwound too');

  // A short copy of the stack gives an exact prefix of the full stack, and nothing made up.
  const short = runs.get(200)!;
  assert.ok(short.length >= 2 && short.length < ours.length, `truncated: ${short.length} of ${ours.length}`);
  assert.deepEqual(short.map((f) => f.pc), ours.slice(0, short.length).map((f) => f.pc));
});

test('a thread blocked in a system call unwinds from inside libc to main, like gdb', async (t) => {
  const child = await startProgram(prog);
  t.after(() => stop(child));
  // Our own stop (ptrace), registers and stack copy; then gdb on the same, still-sleeping
  // thread. The 20 ms sleep dominates, so retry the rare case where it woke in between.
  for (let attempt = 0; ; attempt++) {
    const ours = parseOurs(execFileSync(unwindTool, ['ptrace', String(child.pid)]).toString());
    const out = await gdbSideBySide(child.pid!, {});
    const gdb = parseGdb(out);
    const again = parseOursByLen(out).get(32768);
    assert.ok(again, `gdb did not run the driver:\n${out}`);
    assert.deepEqual(again.slice(0, gdb.length).map((f) => f.pc), gdb.map((f) => f.pc), out);
    assert.equal(gdb.at(-1)!.name, 'main');
    if (ours[0]!.pc !== again[0]!.pc && attempt < 5) continue;
    assert.deepEqual(ours.map((f) => f.pc), again.map((f) => f.pc));
    assert.ok(ours.some((f) => f.sym === 'run_forever'));
    break;
  }
});

test('the driver rejects bad input with one line and a non-zero exit', () => {
  assert.throws(() => execFileSync(unwindTool, ['mem', 'x'], { stdio: 'pipe' }), (e: { status: number; stderr: Buffer }) => {
    assert.equal(e.status, 2);
    assert.match(e.stderr.toString(), /^ls-unwind-test: .+\n$/);
    return true;
  });
});

test('garbage registers and stack bytes never crash, hang or overflow the unwinder', async (t) => {
  const child = await startProgram(prog);
  t.after(() => stop(child));
  for (const seed of ['1', '42', '123456789']) {
    const out = execFileSync(unwindTool, ['fuzz', String(child.pid), '20000', seed], { timeout: 30000 }).toString();
    const m = /^fuzz 20000 unwinds, max (\d+) frames, us_per_unwind ([\d.]+)$/m.exec(out);
    assert.ok(m, out);
  }
  assert.equal(child.exitCode, null, 'the target runs on');
});
