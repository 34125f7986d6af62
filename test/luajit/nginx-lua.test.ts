// End to end on what users run: Debian nginx + libnginx-mod-http-lua + libluajit2 (stripped).
// A handler leaks into a module-level table and makes short-lived garbage; attachLuajit must
// blame the leaking Lua line, with verdict 'leak', and not the garbage.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { analyzeFiles, foldFiles } from '../../src/pipeline/analyze-files.js';
import { attachLuajit } from '../../src/luajit/attach-luajit.js';
import { detectLuajit } from '../../src/luajit/detect.js';
import { curlBatch, GARBAGE_LINE, LEAK_LINE, startLuaServer, type LuaServer } from './nginx-server.js';

let server: LuaServer;
let dir: string;

before(async () => {
  server = await startLuaServer(2);
  dir = mkdtempSync(join(tmpdir(), 'leakscope-luajit-test-'));
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('detectLuajit: the stripped Debian LuaJIT in nginx is supported; a process without Lua is not', async () => {
  const w = await detectLuajit(server.workers[0]!);
  assert.equal(w.supported, true, w.reason);
  assert.match(w.module, /libluajit-5\.1\.so/);
  const self = await detectLuajit(process.pid);
  assert.equal(self.supported, false);
  assert.match(self.reason, /Lua C API/);
  const none = await detectLuajit(0x3ffffff0);
  assert.equal(none.supported, false);
});

test('the leaking Lua line is the top growing site with verdict leak; the garbage is not', { timeout: 60_000 }, async () => {
  // Warm up: JIT traces form, module loaded in every worker.
  await curlBatch(server.port, 'warm', 300);
  const out = join(dir, 'nginx-lua.lstrace');
  // Traced for 10 s, then settled: one more full GC cycle with new allocations unrecorded.
  let tracing = true;
  // The master too, as `attach` passes it: its Lua VM (inherited by the workers) stays idle.
  const traced = attachLuajit({ pids: [server.master, ...server.workers], durationMs: 10_000, out, settleMs: 10_000 }).finally(() => {
    tracing = false;
  });
  // Steady load all along: several GC cycles collect the garbage, the table keeps growing.
  let batch = 0;
  while (tracing) {
    await Promise.all([curlBatch(server.port, `b${batch}a`, 150), curlBatch(server.port, `b${batch}b`, 150)]);
    batch++;
  }
  const res = await traced;
  assert.ok(res.events > 10_000, `only ${res.events} events`);
  // Nothing lost unless the machine is starved (other suites running): then little, and said.
  assert.ok(res.lost <= res.events / 20, `${res.lost} events lost of ${res.events}`);
  assert.ok(res.warnings.some((w) => /full GC cycle ran in each allocating process/.test(w)), res.warnings.join('\n'));
  assert.ok(res.warnings.includes(`pid ${server.master}: its Lua VM allocated nothing while traced`), res.warnings.join('\n'));
  assert.ok(!res.warnings.some((w) => /no full GC cycle ran/.test(w)), res.warnings.join('\n'));
  // Enough GC cycles in the busiest worker for growth to mean something.
  assert.ok(res.warnings.some((w) => /at least \d+ full GC cycles while traced/.test(w)), res.warnings.join('\n'));

  const result = await analyzeFiles([out], { top: 50 });
  const procs = result.processes.filter((p) => server.workers.includes(p.pid));
  assert.ok(procs.length >= 1);
  // The busiest worker: where most requests went.
  const p = procs.sort((a, b) => b.allocated.bytes - a.allocated.bytes)[0]!;
  const leaking = p.sites.filter((s) => s.verdict?.verdict === 'leak').sort((a, b) => b.bytes - a.bytes);
  assert.ok(leaking.length > 0, 'no leaking site');
  const top = leaking[0]!;
  assert.ok(top.stack[0]!.file.endsWith('leaky.lua'), `top leak site is ${top.label}`);
  assert.equal(top.stack[0]!.line, LEAK_LINE, `top leak site is ${top.label}`);
  // The Lua stack goes down to the content_by_lua chunk.
  assert.ok(top.stack.some((f) => f.file.startsWith('content_by_lua')), top.stack.map((f) => f.file).join(' < '));

  // The garbage line was recorded (from the engine's sites: a site nothing is left of once the
  // GC has run is in no list of outstanding sites) and collected once settled: (almost) nothing
  // of it is outstanding (a few tables of the requests running at the end may still be
  // reachable), far below the leak, and never a leak.
  const { state } = await foldFiles([out]);
  const ps = state.processes.find((x) => x.pid === p.pid)!;
  const scope = state.symbols.scope(p.pid);
  let gAll = 0;
  let gOut = 0;
  for (let i = 0; i < ps.sites.length; i++) {
    const lua = scope.stackFrames(ps.sites.stackOf(i)).find((f) => f.file.endsWith('leaky.lua'));
    if (lua?.line !== GARBAGE_LINE) continue;
    gAll += ps.sites.allocCount(i);
    gOut += ps.sites.outCount(i);
  }
  assert.ok(gAll > 0, 'the garbage line was never seen');
  assert.ok(gOut <= gAll / 100 + 10, `garbage outstanding ${gOut} of ${gAll}`);
  const garbage = p.sites.filter((s) => s.stack[0]?.file.endsWith('leaky.lua') && s.stack[0]?.line === GARBAGE_LINE);
  for (const g of garbage) assert.notEqual(g.verdict?.verdict, 'leak', `garbage site ${g.label}: ${g.verdict?.explanation}`);
  const gBytes = garbage.reduce((a, g) => a + g.bytes, 0);
  assert.ok(gBytes < top.bytes / 10, `garbage outstanding ${gBytes} B vs leak ${top.bytes} B`);
  // The stream is consistent: settling does not turn into double frees (a few may come from
  // blocks allocated before the worker was discovered and freed later).
  assert.ok(p.anomalies.doubleFree <= p.allocated.frees / 1000 + 20, `${p.anomalies.doubleFree} double frees of ${p.allocated.frees}`);
  // Among everything outstanding in user code, the leak comes first.
  const userSites = p.sites.filter((s) => !s.label.startsWith('(luajit')).sort((a, b) => b.bytes - a.bytes);
  assert.equal(userSites[0]!.key, top.key, `largest outstanding site is ${userSites[0]!.label}`);
});
