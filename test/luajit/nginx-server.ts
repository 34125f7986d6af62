// A Debian nginx with the Lua module (libnginx-mod-http-lua, libluajit2-5.1-2) in its own
// prefix dir, serving a Lua handler that leaks into a module-level table and makes garbage.
// Used by the LuaJIT test and benchmark; stops exactly the master it started.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/ports.js';

/** The line of `leaky.lua` that leaks (inserts into the module-level table). */
export const LEAK_LINE = 17;
/** The line of `leaky.lua` that builds short-lived tables. */
export const GARBAGE_LINE = 7;

export const LEAKY_LUA = `local _M = {}
local seen = {}

local function garbage(n)
  local acc = 0
  for i = 1, n do
    local t = { i, i * 2, tostring(i) }
    acc = acc + #t
  end
  return acc
end

function _M.handle()
  local label = ngx.var.arg_label or "none"
  local n = tonumber(ngx.var.arg_garbage) or 30
  garbage(n)
  seen[label] = { label = label, at = ngx.now(), pad = string.rep("x", 64) }
  ngx.say("ok")
end

-- The same, never compiled: the interpreter's frames.
function _M.handle_interp()
  local label = ngx.var.arg_label or "none"
  seen[label] = { label = label, interp = true }
  ngx.say("ok")
end
jit.off(_M.handle_interp, true)

return _M
`;

/** The line of \`leaky.lua\` that leaks in the interpreted handler. */
export const LEAK_LINE_INTERP = 24;
/** The line where the interpreted handler (jit.off) is defined: its frames' function name. */
export const INTERP_FN_LINE = LEAKY_LUA.split('\n').findIndex((l) => l.startsWith('function _M.handle_interp')) + 1;

export interface LuaServer {
  prefix: string;
  port: number;
  master: number;
  workers: number[];
  stop(): Promise<void>;
}

function conf(prefix: string, port: number, workers: number): string {
  return `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
worker_processes ${workers};
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  lua_package_path "${prefix}/?.lua;;";
  server {
    listen 127.0.0.1:${port};
    location /leak { content_by_lua_block { require("leaky").handle() } }
    location /leaki { content_by_lua_block { require("leaky").handle_interp() } }
    location /plain { return 200 "ok\\n"; }
  }
}
`;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out.sort((a, b) => a - b);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Is the loopback port free right now? (Several test runs may share the machine.) */
/**
 * Starts the server on a port the kernel picks (retrying once with a new one if another
 * process took it in between), so that two runs of the suite at once do not collide.
 */
export async function startLuaServer(workers = 2): Promise<LuaServer> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOn(await freePort(), workers);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

async function startOn(port: number, workers: number): Promise<LuaServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'leakscope-luajit-'));
  chmodSync(prefix, 0o755); // workers run as nobody and read leaky.lua
  writeFileSync(join(prefix, 'leaky.lua'), LEAKY_LUA);
  writeFileSync(join(prefix, 'nginx.conf'), conf(prefix, port, workers));
  const child: ChildProcess = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: 'ignore' });
  const master = child.pid!;
  let ws: number[] = [];
  for (let i = 0; i < 100 && ws.length < workers; i++) {
    await sleep(50);
    if (child.exitCode !== null) break;
    ws = childrenOf(master);
  }
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(50);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    rmSync(prefix, { recursive: true, force: true });
  };
  if (ws.length < workers) {
    let log = '';
    try { log = readFileSync(join(prefix, 'error.log'), 'utf8'); } catch { /* none */ }
    await stop();
    throw new Error(`nginx with the Lua module did not start: ${log.trim().split('\n').pop() ?? 'no log'}`);
  }
  // Wait until it answers.
  for (let i = 0; i < 50; i++) {
    const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/plain`], { encoding: 'utf8' });
    if (r.stdout === '200') break;
    await sleep(50);
  }
  return { prefix, port, master, workers: ws, stop };
}

/**
 * Requests with curl (URL globbing: one process, one kept-alive connection per batch), each with
 * a new label. Returns when `count` requests are done.
 */
export function curlBatch(port: number, tag: string, count: number, garbage = 30, path = '/leak'): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = `http://127.0.0.1:${port}${path}?garbage=${garbage}&label=${tag}_[1-${count}]`;
    const c = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '60', url], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited with ${code}`))));
  });
}
