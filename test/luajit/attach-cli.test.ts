// `leakscope attach --allocator luajit` as a user runs it: the command line reaches the LuaJIT
// tracer, and its JSON report names the leaking Lua line with verdict `leak`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { curlBatch, LEAK_LINE, startLuaServer, type LuaServer } from './nginx-server.js';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { cli as runCli } from '../support/cli.js';

let server: LuaServer;

before(async () => {
  server = await startLuaServer(1);
});

after(async () => {
  await server?.stop();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args);
}

test('attach --allocator luajit reports the leaking Lua line as a leak', { timeout: 90_000 }, async () => {
  await curlBatch(server.port, 'warm', 300);
  let tracing = true;
  const run = cli(['attach', '--pid', String(server.master), '--children', '--allocator', 'luajit', '--duration', '8s', '--format', 'json']).finally(() => {
    tracing = false;
  });
  let batch = 0;
  while (tracing) {
    await curlBatch(server.port, `c${batch++}`, 150);
  }
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /tracing the LuaJIT GC heap of 2 process\(es\)/);
  const result = JSON.parse(r.stdout) as AnalysisResult;
  const worker = result.processes.find((p) => p.pid === server.workers[0]);
  assert.ok(worker, `no report for worker ${server.workers[0]}`);
  const leaks = worker.sites.filter((s) => s.verdict?.verdict === 'leak').sort((a, b) => b.bytes - a.bytes);
  assert.ok(leaks.length > 0, 'no leaking site');
  assert.ok(leaks[0]!.stack[0]!.file.endsWith('leaky.lua'), leaks[0]!.label);
  assert.equal(leaks[0]!.stack[0]!.line, LEAK_LINE, leaks[0]!.label);
});

test('attach --allocator luajit without --duration says why, in one line', async () => {
  const r = await cli(['attach', '--pid', String(server.master), '--allocator', 'luajit']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr, 'leakscope: --allocator luajit needs --duration (after it, the tracer waits for a GC cycle so garbage is not reported as outstanding)\n');
});
