// The tracer's record stream and the Lua line map, on bytes laid out as the C side writes them
// (native/luajit/src/lj_event.h) and prototypes as LuaJIT 2.1 stores them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordParser, REC_EVENT, REC_STACK, LJ_F_NOLUA, LJ_F_VM, type LjEvent, type LjRecord } from '../../src/luajit/records.js';
import { chunkLabel, protoLine, ProtoCache, type Proto } from '../../src/luajit/protos.js';
import { recordFrames, VM_SITES } from '../../src/luajit/stacks.js';

function u64(b: Buffer, o: number, v: number): void {
  b.writeUInt32LE(v % 0x100000000, o);
  b.writeUInt32LE(Math.floor(v / 0x100000000), o + 4);
}

function eventRec(op: number, pid: number, stack: number, ptr: number, ret: number, nsize: number, ts: number): Buffer {
  const b = Buffer.alloc(4 + 48);
  b.writeUInt32LE(48, 0);
  b[4] = REC_EVENT;
  b[5] = op;
  b.writeUInt32LE(pid, 8);
  b.writeUInt32LE(pid + 1, 12);
  b.writeUInt32LE(stack, 16);
  u64(b, 20, ts);
  u64(b, 28, ptr);
  u64(b, 36, ret);
  u64(b, 44, nsize);
  return b;
}

function stackRec(id: number, pid: number, flags: number, vmstate: number, frames: { ptr: number; pos: number; kind: number }[]): Buffer {
  const len = 5 + 80 + 16 * frames.length;
  const b = Buffer.alloc(4 + len);
  b.writeUInt32LE(len, 0);
  b[4] = REC_STACK;
  b.writeUInt32LE(id, 5);
  const o = 9;
  b.writeUInt32LE(pid, o + 8);
  b.writeInt32LE(vmstate, o + 56);
  b[o + 60] = 1;
  b[o + 61] = frames.length;
  b[o + 62] = flags;
  b.writeUInt32LE(0xffffffff, o + 72);
  frames.forEach((f, i) => {
    u64(b, o + 80 + 16 * i, f.ptr);
    b.writeUInt32LE(f.pos, o + 80 + 16 * i + 8);
    b[o + 80 + 16 * i + 12] = f.kind;
  });
  return b;
}

test('RecordParser: stack definitions and events, split at every byte boundary', () => {
  const stream = Buffer.concat([
    stackRec(7, 4242, 0, -1, [{ ptr: 0x7f0000001000, pos: 5, kind: 0 }, { ptr: 0x7f0000002000, pos: 9, kind: 0 }]),
    eventRec(1, 4242, 7, 0, 0x7f1234567890, 72, 1_000_000_123),
    eventRec(3, 4242, 0, 0x7f1234567890, 0, 0, 1_000_000_999),
  ]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const stacks: [number, LjRecord][] = [];
    const events: LjEvent[] = [];
    const p = new RecordParser({ stack: (id, r) => stacks.push([id, r]), event: (e) => events.push(e) });
    p.push(stream.subarray(0, cut));
    p.push(stream.subarray(cut));
    assert.equal(p.bad, 0);
    assert.equal(p.leftover, 0);
    assert.equal(stacks.length, 1);
    assert.equal(stacks[0]![0], 7);
    assert.deepEqual(stacks[0]![1].frames.map((f) => [f.ptr, f.pos]), [[0x7f0000001000, 5], [0x7f0000002000, 9]]);
    assert.equal(stacks[0]![1].mcofs, -1);
    assert.deepEqual(events.map((e) => [e.op, e.pid, e.tid, e.stack, e.ptr, e.ret, e.nsize, e.ts]), [
      [1, 4242, 4243, 7, 0, 0x7f1234567890, 72, 1_000_000_123],
      [3, 4242, 4243, 0, 0x7f1234567890, 0, 0, 1_000_000_999],
    ]);
  }
});

test('RecordParser: a corrupt length stops the stream and is counted; a cut record is left over', () => {
  const events: LjEvent[] = [];
  const p = new RecordParser({ stack: () => {}, event: (e) => events.push(e) });
  const good = eventRec(1, 1, 0, 0, 16, 8, 5);
  const bad = Buffer.from(good);
  bad.writeUInt32LE(47, 0);
  p.push(Buffer.concat([good, bad, good]));
  assert.equal(events.length, 1);
  assert.equal(p.bad, 1);
  const q = new RecordParser({ stack: () => {}, event: () => {} });
  q.push(good.subarray(0, 30));
  assert.equal(q.leftover, 30);
});

test('protoLine follows lj_debug_line for 1-, 2- and 4-byte line maps', () => {
  const p1: Proto = { chunk: 'x.lua', firstline: 10, numline: 5, sizebc: 4, lineinfo: Buffer.from([0, 2, 5]), width: 1 };
  assert.equal(protoLine(p1, 0), 10); // the function header
  assert.equal(protoLine(p1, 1), 10);
  assert.equal(protoLine(p1, 2), 12);
  assert.equal(protoLine(p1, 3), 15);
  assert.equal(protoLine(p1, 4), 15); // sizebc: first + numline
  assert.equal(protoLine(p1, 5), 0);
  assert.equal(protoLine(p1, 0xffffffff), 0);
  const li2 = Buffer.alloc(4);
  li2.writeUInt16LE(300, 0);
  li2.writeUInt16LE(301, 2);
  assert.equal(protoLine({ ...p1, numline: 400, sizebc: 3, lineinfo: li2, width: 2 }, 2), 311);
  const li4 = Buffer.alloc(4);
  li4.writeUInt32LE(70000, 0);
  assert.equal(protoLine({ ...p1, numline: 80000, sizebc: 2, lineinfo: li4, width: 4 }, 1), 70010);
});

test('chunkLabel shows chunk names the way Lua does', () => {
  assert.equal(chunkLabel('@/srv/app/handler.lua'), '/srv/app/handler.lua');
  assert.equal(chunkLabel('=content_by_lua(nginx.conf:12)'), 'content_by_lua(nginx.conf:12)');
  assert.equal(chunkLabel('return 1'), '[string "return 1"]');
  assert.equal(chunkLabel('local x = 1\nreturn x'), '[string "local x = 1..."]');
});

test('recordFrames: the VM working for itself and C code outside Lua get their own sites', () => {
  const base: LjRecord = { ts: 0, pid: 1, tid: 1, op: 1, ptr: 0, ret: 0, osize: 0, nsize: 8, g: 0, vmstate: -3, flags: LJ_F_VM, trace: 0, mcofs: -1, frames: [] };
  const protos = new ProtoCache();
  assert.deepEqual(recordFrames(base, protos).map((f) => f.fn), [VM_SITES.gc]);
  assert.deepEqual(recordFrames({ ...base, vmstate: -5 }, protos).map((f) => f.fn), [VM_SITES.jit]);
  assert.deepEqual(recordFrames({ ...base, vmstate: -2, flags: LJ_F_NOLUA }, protos).map((f) => f.fn), [VM_SITES.outside]);
  assert.deepEqual(recordFrames({ ...base, vmstate: -1, flags: 0 }, protos).map((f) => f.fn), [VM_SITES.noFrames]);
  // A C function at the leaf is dropped: the site is the Lua caller (here unreadable).
  const c = recordFrames({ ...base, vmstate: -2, flags: 0, frames: [{ kind: 1, ptr: 0x1234, pos: 0xffffffff, ffid: 1 }, { kind: 0, ptr: 8, pos: 1, ffid: 0 }] }, protos);
  assert.deepEqual(c.map((f) => f.fn), ['[lua function ?]']);
});

test('LuajitEventConverter: blocks made while settling are matched with their frees, never counted', async () => {
  const { LuajitEventConverter } = await import('../../src/luajit/attach-luajit.js');
  const out: { kind: string; addr?: number; oldAddr?: number }[] = [];
  const conv = new LuajitEventConverter({ event: (e) => { if (e.kind !== 'frame' && e.kind !== 'stack') out.push(e as never); } }, 0);
  const ev = (op: number, ptr: number, ret: number): LjEvent => ({ op, pid: 9, tid: 9, stack: 0, ts: 10, ptr, ret, nsize: 32 });
  conv.event(ev(1, 0, 0x1000)); // counted allocation
  conv.event(ev(1 | 0x80, 0, 0x2000)); // made while settling
  conv.event(ev(2 | 0x80, 0x2000, 0x3000)); // ... and moved
  conv.event(ev(2 | 0x80, 0x1000, 0x4000)); // an older block moved while settling: still counted
  conv.event(ev(3, 0x3000, 0)); // free of the settling block: not emitted
  conv.event(ev(3, 0x4000, 0)); // free of the counted block
  assert.deepEqual(out.map((e) => [e.kind, e.addr ?? 0, e.oldAddr ?? 0]), [
    ['alloc', 0x1000, 0],
    ['realloc', 0x4000, 0x1000],
    ['free', 0x4000, 0],
  ]);
});

test('garbage from the tracer or from memory never throws, and frames stay writable', async () => {
  const fc = await import('fast-check');
  const { LuajitEventConverter } = await import('../../src/luajit/attach-luajit.js');
  const { TraceWriter } = await import('../../src/trace/writer.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'ls-luajit-fuzz-'));
  try {
    const w = TraceWriter.create(join(dir, 'f.lstrace'), { format: 1, clock: 'ns', source: 'test' });
    const conv = new LuajitEventConverter(w, 0);
    const parser = new RecordParser(conv);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), fc.integer({ min: 0, max: 2 ** 47 }), (chunks, addr) => {
        // Raw bytes, and well-framed stack records pointing anywhere in our own memory.
        for (const c of chunks) parser.push(Buffer.from(c));
        const rec = stackRec(1 + (addr % 1000), process.pid, 0, -1, [
          { ptr: addr, pos: addr % 7, kind: 0 },
          { ptr: addr + 8, pos: 0xffffffff, kind: 1 },
        ]);
        new RecordParser(conv).push(rec);
      }),
      { numRuns: 300 },
    );
    await w.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
