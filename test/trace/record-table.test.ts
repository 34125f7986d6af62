// The trace's record table (src/trace/format.ts) against everything else that knows the format:
// docs/trace-format.md's table of records, the C recorder's record codes (lk.h) and encoders
// (enc.h), and the records the BPF loader writes to attach (struct ls_out and friends, whose
// offsets src/attach/loader.ts mirrors). The C side is compiled and asked, not read by eye.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECORDS } from '../../src/trace/format.js';
import type { FieldDef, RecordDef } from '../../src/trace/format.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { LS_AGG_ROW, LS_NOTIFY, LS_OUT } from '../../src/attach/loader.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(root, p), 'utf8');

/** Splits on commas outside parentheses. */
function items(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

const DOC_TYPE: Record<string, string> = { varint: 'uv', svarint: 'sv', string: 'str', u8: 'enum' };

/** A field written only when a flags field's bit says so (FRAME's vaddr). */
const conditional = (r: RecordDef, f: FieldDef) => r.fields.some((g) => g.bits && f.name in g.bits);

test('docs/trace-format.md lists every record of the table, with the same code, fields and event', () => {
  const rows = read('docs/trace-format.md').split('\n').filter((l) => /^\| 0x[0-9a-f]{2} \|/.test(l));
  assert.equal(rows.length, RECORDS.length, 'one row per record');
  for (const r of RECORDS) {
    const row = rows.find((l) => l.startsWith(`| 0x${r.code.toString(16).padStart(2, '0')} |`));
    assert.ok(row, `no row for 0x${r.code.toString(16)} ${r.name}`);
    const [, name, fields, ev] = row.slice(1, -1).split('|').map((x) => x.trim());
    assert.equal(name, r.name);
    if (r.kind) assert.match(ev!, new RegExp(`^\`${r.kind}\``), `${r.name}: event column`);
    const doc = items(fields!);
    if (r.timed) assert.equal(doc.shift(), 'dt', `${r.name}: an event record starts with dt`);
    const plain = r.fields.filter((f) => !conditional(r, f));
    assert.equal(doc.length, plain.length, `${r.name}: ${doc.join(' | ')}`);
    plain.forEach((f, i) => {
      const m = /^(\w+) (varint|svarint|string|u8)\b(.*)$/.exec(doc[i]!);
      assert.ok(m, `${r.name}: field ${i}: ${doc[i]}`);
      assert.equal(m[1], f.name, `${r.name}: field ${i}`);
      assert.equal(DOC_TYPE[m[2]!], Array.isArray(f.type) ? 'enum' : f.type, `${r.name}.${f.name}: type`);
      if (Array.isArray(f.type)) {
        // "(0 get, 1 attach, ...)": each value with its byte.
        for (const [k, v] of f.type.entries()) assert.match(m[3]!, new RegExp(`\\b${k} ${v}\\b`), `${r.name}.${f.name}: ${k} ${v}`);
      }
      if (f.bits) for (const name of Object.keys(f.bits)) assert.match(m[3]!, new RegExp(`\\b${name}\\b`), `${r.name}.${f.name}: says bit ${name}`);
    });
  }
});

test('the C recorder\'s record codes (lk.h) are the table\'s', () => {
  const enumText = /\/\/ Record types[^\n]*\nenum \{([\s\S]*?)\};/.exec(read('native/recorder/src/lk.h'));
  assert.ok(enumText, 'the record-type enum of lk.h');
  const codes = [...enumText[1]!.matchAll(/R_(\w+) = (0x[0-9a-fA-F]+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
  assert.ok(codes.length >= 15, `${codes.length} codes`);
  for (const [name, code] of codes) {
    const r = RECORDS.find((x) => x.name === name);
    assert.ok(r, `R_${name} is not a record of src/trace/format.ts`);
    assert.equal(code, r.code, `R_${name}`);
  }
});

test('the C recorder\'s encoders (enc.h) write varints, svarints, strings and record starts as the TypeScript writer does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-enc-'));
  try {
    const prog = join(dir, 'enc.c');
    writeFileSync(prog, `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "enc.h"
static lk_buf b;
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i] + 2;
    switch (argv[i][0]) {
    case 'v': lk_var(&b, strtoull(a, 0, 10)); break;
    case 'V': lk_set_end(&b, lk_put_var(lk_cur(&b), strtoull(a, 0, 10))); break;
    case 's': lk_svar(&b, strtoll(a, 0, 10)); break;
    case 't': lk_str(&b, a, 4096); break;
    case 'e': lk_set_end(&b, lk_put_ev(lk_cur(&b), (uint8_t)atoi(a), strtoll(strchr(a, ':') + 1, 0, 10))); break;
    }
  }
  fwrite(b.data + LK_CHUNK_HDR, 1, b.pos, stdout);
  return 0;
}
`);
    const exe = join(dir, 'enc');
    execFileSync('cc', ['-O2', '-Wall', '-I', join(root, 'native/recorder/src'), '-o', exe, prog]);
    const uvs = [0, 1, 127, 128, 300, 16383, 16384, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 0x7fff_1234_5678, 2 ** 53 - 1];
    const svs = [0, -1, 1, -64, 64, -65, 2 ** 31, -(2 ** 31), 2 ** 40 + 3, -(2 ** 40), 2 ** 52 - 1];
    const strs = ['', 'a', 'requête ✓ 🚀', 'x'.repeat(200)];
    const args: string[] = [];
    const file = join(dir, 'ts.lstrace');
    const w = TraceWriter.create(file, { format: 1, clock: 'ns', source: 'test' });
    for (const v of uvs) {
      args.push(`v:${v}`, `V:${v}`);
      w.uv(v);
      w.uv(v);
    }
    for (const v of svs) {
      args.push(`s:${v}`);
      w.sv(v);
    }
    for (const s of strs) {
      args.push(`t:${s}`);
      w.str(s);
    }
    // Record starts: a type byte and the dt from the chunk's running time.
    let t = 0;
    for (const [type, dt] of [[0x10, 5], [0x11, 0], [0x12, -3], [0x20, 2 ** 40], [0x34, -(2 ** 40)]] as const) {
      args.push(`e:${type}:${dt}`);
      t += dt;
      w.rec(type, t);
    }
    w.flush();
    const bytes = readFileSync(file);
    const payload = bytes.subarray(12 + bytes.readUInt32LE(8) + 4 + 12);
    const c = execFileSync(exe, args);
    assert.equal(c.length, payload.length);
    assert.ok(c.equals(payload), `C ${c.toString('hex')}\nTS ${payload.toString('hex')}`);
    void w.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the BPF loader\'s records are laid out as src/attach/loader.ts reads them (offsetof, sizeof)', () => {
  const loader = read('native/bpf/src/loader.c');
  const out = /struct ls_out \{[\s\S]*?\};/.exec(loader)?.[0];
  const agg = /struct ls_agg_row \{[\s\S]*?\};/.exec(loader)?.[0];
  const notify = /struct (\{ uint32_t kind, pid; uint64_t ts, a0(?:, a1)?; \}) n = /.exec(loader)?.[1];
  assert.ok(out && agg && notify, 'struct ls_out, struct ls_agg_row and the NOTIFY record in loader.c');
  const layouts = { 'struct ls_out': LS_OUT, 'struct ls_agg_row': LS_AGG_ROW, 'struct ls_notify': LS_NOTIFY } as Record<string, Record<string, number>>;
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-lsout-'));
  try {
    const prints = Object.entries(layouts).flatMap(([type, fields]) => Object.keys(fields).map((f) =>
      f === 'size' ? `printf("${type} size %zu\\n", sizeof(${type}));` : `printf("${type} ${f} %zu\\n", offsetof(${type}, ${f}));`));
    const prog = join(dir, 'layout.c');
    writeFileSync(prog, `#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>
#include "ls_event.h"
${out}
${agg}
struct ls_notify ${notify};
int main(void) {
  ${prints.join('\n  ')}
  return 0;
}
`);
    const exe = join(dir, 'layout');
    execFileSync('cc', ['-Wall', '-I', join(root, 'native/bpf/src'), '-o', exe, prog]);
    const got: Record<string, Record<string, number>> = {};
    for (const line of execFileSync(exe, { encoding: 'utf8' }).trim().split('\n')) {
      const m = /^(struct \w+) (\w+) (\d+)$/.exec(line)!;
      (got[m[1]!] ??= {})[m[2]!] = Number(m[3]);
    }
    assert.deepEqual(got, layouts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
