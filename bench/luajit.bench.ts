// LuaJIT allocator tracing overhead: Debian nginx + lua module serving a handler that leaks
// into a module-level table and builds short-lived tables, under wrk on loopback.
// Requests/s traced vs untraced, measured in the same run, for a heavy and a light handler.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLuajit } from '../src/luajit/attach-luajit.js';
import { startLuaServer } from '../test/luajit/nginx-server.js';

const SECONDS = Number(process.env.LSBENCH_SECONDS ?? 8);
// Short-lived tables built per request: 30 makes an allocation-heavy handler (~40 GC
// allocations per request), 0 a light one (the leak's few allocations only).
const SCENARIOS = (process.env.LSBENCH_GARBAGE ?? '30,0').split(',').map(Number);
const port = 18420;
const dir = mkdtempSync(join(tmpdir(), 'ls-luajit-bench-'));
const script = join(dir, 'labels.lua');
// A new label per request: the table really grows, as in the leak being hunted.
function writeScript(garbage: number, tag: string): void {
  writeFileSync(script, `local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function request() n = (n or 0) + 1; return wrk.format(nil, "/leak?garbage=${garbage}&label=${tag}" .. id .. "_" .. n) end
`);
}

// Asynchronous: the event loop must keep reading the tracer's output while wrk runs.
function wrk(seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('wrk', ['-t2', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}/`]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', () => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`wrk printed no rate: ${out}`));
    });
  });
}

const server = await startLuaServer(port, 2);
try {
  for (const garbage of SCENARIOS) {
    writeScript(garbage, `g${garbage}w`);
    await wrk(2); // warm-up: module loaded, traces compiled
    writeScript(garbage, `g${garbage}u`);
    const untraced = await wrk(SECONDS);
    const out = join(dir, 'bench.lstrace');
    const ac = new AbortController();
    const traced = attachLuajit({ pids: server.workers, durationMs: (SECONDS + 30) * 1000, out, settleMs: 0, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 1500)); // tracer loaded
    writeScript(garbage, `g${garbage}t`);
    await wrk(1); // discovery: the first Lua API call of each worker
    const t0 = Date.now();
    const tracedRps = await wrk(SECONDS);
    const tracedSecs = (Date.now() - t0) / 1000;
    ac.abort();
    const res = await traced;
    writeScript(garbage, `g${garbage}a`);
    const after = await wrk(SECONDS);
    const perReq = res.events / Math.max(1, tracedRps * tracedSecs);
    console.log(`\nscenario garbage(${garbage}): 2 nginx workers, wrk -t2 -c32 -d${SECONDS}s, a new label (leaked table) per request`);
    console.log(`  untraced:              ${untraced.toFixed(0)} requests/s`);
    console.log(`  traced:                ${tracedRps.toFixed(0)} requests/s`);
    console.log(`  untraced after:        ${after.toFixed(0)} requests/s (tracer detached)`);
    console.log(`  ratio traced/untraced: ${(tracedRps / untraced).toFixed(3)} (slowdown ${(untraced / tracedRps).toFixed(2)}x)`);
    console.log(`  events: ${res.events} (~${perReq.toFixed(0)} allocator calls per request), lost ${res.lost}, trace ${(statSync(out).size / 1e6).toFixed(1)} MB`);
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
