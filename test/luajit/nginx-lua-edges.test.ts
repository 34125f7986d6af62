// Edges on the real nginx + LuaJIT: the allocator probed at its entry (any allocf, not the
// lj_alloc_f fast path), and a traced worker that dies while traced.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Event, Frame } from '../../src/model/events.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachLuajit } from '../../src/luajit/attach-luajit.js';
import { curlBatch, LEAK_LINE, LEAK_LINE_INTERP, startLuaServer, type LuaServer } from './nginx-server.js';

let server: LuaServer;
let dir: string;

before(async () => {
  server = await startLuaServer(2);
  dir = mkdtempSync(join(tmpdir(), 'leakscope-luajit-edges-'));
  await curlBatch(server.port, 'warm', 200);
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function load(until: () => boolean, tag: string): Promise<void> {
  for (let i = 0; !until(); i++) {
    await Promise.all([curlBatch(server.port, `${tag}${i}`, 50, 5), curlBatch(server.port, `${tag}${i}i`, 20, 0, '/leaki')]);
  }
}

async function readAll(path: string): Promise<{ events: Event[]; syms: SymbolTables }> {
  const events: Event[] = [];
  const syms = new SymbolTables();
  await readTrace(path, {
    event(e) {
      if (e.kind === 'frame') syms.scope(e.pid).defineFrame(e.id, e.frame);
      else if (e.kind === 'stack') syms.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      else events.push(e);
    },
  });
  return { events, syms };
}

test('the allocator probed at its entry gives the same events and stacks; interpreted frames have their lines', { timeout: 30_000 }, async () => {
  const out = join(dir, 'entry.lstrace');
  process.env.LSTRACE_LUAJIT_NO_FAST = '1';
  let done = false;
  try {
    const traced = attachLuajit({ pids: server.workers, durationMs: 3000, out, settleMs: 0 }).finally(() => (done = true));
    await load(() => done, 'e');
    const res = await traced;
    assert.ok(res.events > 500, `${res.events} events`);
  } finally {
    delete process.env.LSTRACE_LUAJIT_NO_FAST;
  }
  const { events, syms } = await readAll(out);
  const allocs = events.filter((e) => e.kind === 'alloc');
  const frees = events.filter((e) => e.kind === 'free');
  assert.ok(allocs.length > 100 && frees.length >= 0);
  const leafs: Frame[] = allocs.map((e) => syms.scope(e.pid).stackFrames(e.kind === 'alloc' ? e.stack : 0)[0]!).filter(Boolean);
  assert.ok(leafs.some((f) => f.file.endsWith('leaky.lua') && f.line === LEAK_LINE), 'the leaking line was never seen');
  // The handler with the JIT off: the interpreter's saved PC gives the line.
  const interp = allocs.map((e) => (e.kind === 'alloc' ? syms.scope(e.pid).stackFrames(e.stack) : [])).find((st) => st[0]?.line === LEAK_LINE_INTERP && st[0].file.endsWith('leaky.lua'));
  assert.ok(interp, 'the interpreted leaking line was never seen');
  assert.ok(!interp[0]!.fn.includes('[compiled]'), interp[0]!.fn);
  assert.ok(interp.some((f) => f.file.startsWith('content_by_lua')), interp.map((f) => f.file).join(' < '));
  for (const e of allocs) if (e.kind === 'alloc') assert.ok(e.addr > 0 && e.size > 0);
});

test('a worker killed while traced: its events are kept, an exit and a warning', { timeout: 30_000 }, async () => {
  const out = join(dir, 'exit.lstrace');
  const victim = server.workers[0]!;
  let done = false;
  const traced = attachLuajit({ pids: server.workers, durationMs: 5000, out, settleMs: 0 }).finally(() => (done = true));
  // A worker of the master this test started, killed while the trace runs.
  const killer = setTimeout(() => process.kill(victim, 'SIGKILL'), 2000);
  await load(() => done, 'x');
  clearTimeout(killer);
  const res = await traced;
  assert.ok(res.warnings.some((w) => w.includes(`pid ${victim} exited`)), res.warnings.join('\n'));
  const { events } = await readAll(out);
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === victim));
  assert.ok(events.some((e) => e.kind === 'alloc'), 'no allocation recorded');
});

test('nothing to trace: one-line UserError naming why, for a process without Lua and a gone pid', async () => {
  const out = join(dir, 'none.lstrace');
  await assert.rejects(attachLuajit({ pids: [process.pid], durationMs: 300, out }), (e: Error) => {
    assert.equal(e.name, 'UserError');
    assert.match(e.message, /does not export|no mapped module exports the Lua C API/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  await assert.rejects(attachLuajit({ pids: [0x3ffffff0], durationMs: 300, out }), /does not exist/);
  await assert.rejects(attachLuajit({ pids: [], durationMs: 300, out }), /no valid pid/);
});
