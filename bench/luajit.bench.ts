// LuaJIT allocator tracing overhead: Debian nginx + lua module serving a handler that leaks
// into a module-level table and builds short-lived tables, under wrk on loopback.
// Requests/s traced vs untraced, measured in the same run, for a heavy and a light handler.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLuajit } from '../src/luajit/attach-luajit.js';
import { startLuaServer } from '../test/luajit/nginx-server.js';

const SECONDS = Number(process.env.LSBENCH_SECONDS ?? 8);
// Short-lived tables built per request: 30 makes an allocation-heavy handler (~40 GC
// allocations per request), 0 a light one (the leak's few allocations only).
const SCENARIOS = (process.env.LSBENCH_GARBAGE ?? '30,0').split(',').map(Number);
const firstPort = 18420; // our slice: 18420-18429
const dir = mkdtempSync(join(tmpdir(), 'ls-luajit-bench-'));
const script = join(dir, 'labels.lua');
// A new label per request: the table really grows, as in the leak being hunted.
function writeScript(garbage: number, tag: string): void {
  writeFileSync(script, `local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function request() n = (n or 0) + 1; return wrk.format(nil, "/leak?garbage=${garbage}&label=${tag}" .. id .. "_" .. n) end
`);
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Our child processes called `name` (the tracer started by attachLuajit). */
function childrenNamed(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'latin1');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === name && ppid === process.pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

interface Run { rps: number; requests: number; workerCpuUs: number }

/**
 * Requests/s, and the nginx workers' CPU time per request: on a shared 2-core machine the
 * throughput depends on what else runs, the CPU a request costs much less so.
 */
async function measured(seconds: number, workers: number[]): Promise<Run> {
  const before = workers.reduce((a, p) => a + cpuTicks(p), 0);
  const r = await wrkRun(seconds);
  const ticks = workers.reduce((a, p) => a + cpuTicks(p), 0) - before;
  return { rps: r.rps, requests: r.requests, workerCpuUs: (ticks * 10_000) / Math.max(1, r.requests) };
}

async function wrk(seconds: number): Promise<number> {
  return (await wrkRun(seconds)).rps;
}

// Asynchronous: the event loop must keep reading the tracer's output while wrk runs.
function wrkRun(seconds: number): Promise<{ rps: number; requests: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn('wrk', ['-t2', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${server.port}/`]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', () => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const n = /(\d+) requests in/.exec(out);
      if (m && n) resolve({ rps: Number(m[1]), requests: Number(n[1]) });
      else reject(new Error(`wrk printed no rate: ${out}`));
    });
  });
}

const server = await startLuaServer(firstPort, 2);
try {
  for (const garbage of SCENARIOS) {
    writeScript(garbage, `g${garbage}w`);
    await wrk(2); // warm-up: module loaded, traces compiled
    writeScript(garbage, `g${garbage}u`);
    const untraced = await measured(SECONDS, server.workers);
    const out = join(dir, 'bench.lstrace');
    const ac = new AbortController();
    const traced = attachLuajit({ pids: server.workers, durationMs: (SECONDS + 30) * 1000, out, settleMs: 0, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 1500)); // tracer loaded
    writeScript(garbage, `g${garbage}t`);
    await wrk(1); // discovery: the first Lua API call of each worker
    const tracer = childrenNamed('lstrace-luajit');
    const tracerBefore = tracer.reduce((a, p) => a + cpuTicks(p), 0);
    const tracedRun = await measured(SECONDS, server.workers);
    const tracerUs = ((tracer.reduce((a, p) => a + cpuTicks(p), 0) - tracerBefore) * 10_000) / Math.max(1, tracedRun.requests);
    ac.abort();
    const res = await traced;
    writeScript(garbage, `g${garbage}a`);
    const after = await measured(SECONDS, server.workers);
    const perReq = res.events / Math.max(1, tracedRun.requests);
    const base = (untraced.workerCpuUs + after.workerCpuUs) / 2;
    console.log(`\nscenario garbage(${garbage}): 2 nginx workers, wrk -t2 -c32 -d${SECONDS}s, a new label (leaked table) per request`);
    console.log(`  untraced:              ${untraced.rps.toFixed(0)} requests/s, workers ${untraced.workerCpuUs.toFixed(1)} us CPU/request`);
    console.log(`  traced:                ${tracedRun.rps.toFixed(0)} requests/s, workers ${tracedRun.workerCpuUs.toFixed(1)} us CPU/request (+ tracer ${tracerUs.toFixed(1)} us)`);
    console.log(`  untraced after:        ${after.rps.toFixed(0)} requests/s, workers ${after.workerCpuUs.toFixed(1)} us CPU/request (tracer detached)`);
    console.log(`  ratio traced/untraced: ${(tracedRun.rps / untraced.rps).toFixed(3)} requests/s (slowdown ${(untraced.rps / tracedRun.rps).toFixed(2)}x)`);
    console.log(`  worker CPU per request: ${(tracedRun.workerCpuUs / base).toFixed(2)}x untraced (${((tracedRun.workerCpuUs - base) / Math.max(1, perReq)).toFixed(2)} us per allocator call)`);
    console.log(`  events: ${res.events} (~${perReq.toFixed(0)} allocator calls per request), lost ${res.lost}, trace ${(statSync(out).size / 1e6).toFixed(1)} MB`);
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
