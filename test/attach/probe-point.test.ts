// Where entry probes go: past flag-setting instructions to one the kernel emulates. Checked
// against objdump's decoding of the real functions we probe (libc, nginx, APR), and on
// hand-made encodings of the operand forms.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ElfFile } from '../../src/symbols/elf.js';
import { emulated, entrySkip, flagsOnlyLength, jumpedInto, ProbePoints } from '../../src/attach/probe-point.js';

const TARGETS: [string, string[]][] = [
  ['/lib/x86_64-linux-gnu/libc.so.6', ['malloc', 'free', 'calloc', 'realloc', 'reallocarray', 'posix_memalign', 'aligned_alloc', 'memalign', 'valloc', 'pvalloc']],
  ['/usr/sbin/nginx', ['ngx_palloc', 'ngx_pnalloc', 'ngx_pcalloc', 'ngx_pmemalign', 'ngx_pfree', 'ngx_create_pool', 'ngx_destroy_pool', 'ngx_reset_pool']],
  ['/usr/lib/x86_64-linux-gnu/libapr-1.so.0', ['apr_palloc', 'apr_pcalloc', 'apr_pool_create_ex', 'apr_pool_destroy', 'apr_pool_clear']],
];

/** objdump's instructions at the start of a function: [offset, mnemonic]. */
function disassemble(path: string, addr: number): [number, string][] {
  const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${addr.toString(16)}`, `--stop-address=0x${(addr + 24).toString(16)}`, path], { encoding: 'utf8' });
  return out.split('\n').flatMap((l) => {
    const m = /^\s+([0-9a-f]+):\s+(\S+)/.exec(l);
    return m ? [[parseInt(m[1]!, 16) - addr, m[2]!] as [number, string]] : [];
  });
}

test('the probe point of each probed function agrees with objdump', () => {
  const points = new ProbePoints();
  let moved = 0;
  for (const [path, symbols] of TARGETS) {
    assert.ok(existsSync(path), `${path} is needed (.ci/run installs it)`);
    const elf = ElfFile.open(path);
    const addrs = new Map([...elf.functions('.dynsym'), ...elf.functions('.symtab')].map((f) => [f.name, f.addr]));
    elf.close();
    for (const sym of symbols) {
      const addr = addrs.get(sym);
      assert.ok(addr !== undefined, `${sym} in ${path}`);
      const insns = disassemble(path, addr);
      // The oracle: skip flag-only instructions to the first the kernel emulates, at most two.
      let expect = 0;
      for (let k = 0; k < insns.length && k < 3; k++) {
        const [off, mn] = insns[k]!;
        if (/^(push|j[a-z]+|call)$/.test(mn)) { expect = off; break; }
        if (!/^(test|cmp[bwlq]?|endbr64)$/.test(mn)) break;
      }
      const got = points.skip(path, sym);
      assert.equal(got, expect, `${sym} in ${path}: ${insns.slice(0, 3).map((x) => x.join(' ')).join('; ')}`);
      if (got) moved++;
    }
  }
  // Debian's builds: glibc's free opens with a test, nginx's ngx_palloc/ngx_pnalloc with a cmp.
  assert.ok(moved >= 3, `${moved} probe points moved past a flag-setting instruction`);
  assert.equal(points.skip('/no/such/file', 'malloc'), 0);
  assert.equal(points.skip('/usr/sbin/nginx', 'no_such_function'), 0);
});

test('operand forms: ModRM, SIB, displacements, rip-relative, immediates', () => {
  const b = (...x: number[]) => Buffer.from(x);
  assert.equal(flagsOnlyLength(b(0x48, 0x85, 0xff), 0), 3); // test %rdi,%rdi
  assert.equal(flagsOnlyLength(b(0x48, 0x39, 0x77, 0x20), 0), 4); // cmp %rsi,0x20(%rdi)
  assert.equal(flagsOnlyLength(b(0x80, 0x3d, 1, 2, 3, 4, 0), 0), 7); // cmpb $0,rip+disp32
  assert.equal(flagsOnlyLength(b(0x48, 0x83, 0x7c, 0x24, 0x08, 0x00), 0), 6); // cmpq $0,0x8(%rsp) (SIB, disp8)
  assert.equal(flagsOnlyLength(b(0x81, 0xbf, 1, 0, 0, 0, 9, 0, 0, 0), 0), 10); // cmpl $9,0x1(%rdi) (disp32, imm32)
  assert.equal(flagsOnlyLength(b(0xf6, 0x07, 0x01), 0), 3); // testb $1,(%rdi)
  assert.equal(flagsOnlyLength(b(0xf3, 0x0f, 0x1e, 0xfa), 0), 4); // endbr64
  assert.equal(flagsOnlyLength(b(0x48, 0x89, 0xf8), 0), 0); // mov: writes a register
  assert.equal(flagsOnlyLength(b(0x83, 0x07, 0x01), 0), 0); // addl $1,(%rdi): /0 of 0x83 writes memory
  assert.equal(flagsOnlyLength(b(0x48, 0x85), 0), 0); // cut short
  assert.ok(emulated(b(0x55), 0) && emulated(b(0x41, 0x54), 0) && emulated(b(0x74, 0x02), 0) && emulated(b(0x0f, 0x84, 0, 0, 0, 0), 0));
  assert.ok(!emulated(b(0x48, 0x89, 0xf8), 0) && !emulated(b(0xc3), 0));
  assert.equal(entrySkip(b(0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x85, 0xff, 0x74, 0x05)), 7); // endbr64; test; je
  assert.equal(entrySkip(b(0x48, 0x85, 0xff, 0x48, 0x89, 0xf8)), 0); // test; mov: stays at the entry
  assert.equal(entrySkip(b(0x55, 0x48, 0x89, 0xe5)), 0); // push first: the entry is emulated
  // A jump back to the probe point (or into what was skipped) keeps the probe at the entry.
  const fn = b(0x48, 0x85, 0xff, 0x74, 0x04, 0x90, 0x90, 0xeb, 0xfa, 0xc3); // test; je; nop; nop; jmp -6 (to 3); ret
  assert.equal(jumpedInto(fn, 3), true);
  assert.equal(jumpedInto(b(0x48, 0x85, 0xff, 0x74, 0x01, 0x90, 0xc3), 3), false);
  assert.equal(jumpedInto(b(0x48, 0x85, 0xff, 0x0f, 0x84, 0, 0, 0, 0, 0xe9, 0xf5, 0xff, 0xff, 0xff), 3), true); // jmp rel32 to 3
});
