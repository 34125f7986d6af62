// ls_unwind on Debian's stock nginx (stripped, no frame pointers): at ngx_create_pool in the
// worker, where an attach probe fires on every new connection, the stack must be gdb's, down
// through ngx_worker_process_cycle to main.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { buildNative, gdbSideBySide, parseGdb, parseOursByLen, stop, tempDir } from './harness.js';
import { freePort } from '../support/ports.js';

let PORT = 0; // set by the test: a port the kernel picks

function get(): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: PORT, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve());
  });
}

async function waitFor<T>(fn: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('nginx worker at ngx_create_pool: same frames as gdb, reaching main', async (t) => {
  PORT = await freePort();
  buildNative();
  const prefix = tempDir('ls-unw-nginx-');
  mkdirSync(join(prefix, 'logs'));
  const t_ = (n: string) => join(prefix, n);
  writeFileSync(t_('nginx.conf'), `worker_processes 1;
daemon off;
pid ${t_('nginx.pid')};
error_log ${t_('logs/error.log')};
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${t_('cb')}; proxy_temp_path ${t_('px')}; fastcgi_temp_path ${t_('fc')};
  uwsgi_temp_path ${t_('uw')}; scgi_temp_path ${t_('sc')};
  server { listen 127.0.0.1:${PORT}; location / { return 200 "ok\\n"; } }
}
`);
  const master = spawn('nginx', ['-p', prefix, '-c', t_('nginx.conf'), '-e', t_('logs/error.log')], { stdio: 'ignore' });
  t.after(async () => {
    await stop(master, 'SIGTERM');
    rmSync(prefix, { recursive: true, force: true });
  });
  const worker = await waitFor(() => {
    try {
      const kids = readFileSync(`/proc/${master.pid}/task/${master.pid}/children`, 'utf8').trim();
      return kids ? Number(kids.split(/\s+/)[0]) : undefined;
    } catch {
      return undefined;
    }
  }, 5000);
  await get(); // the worker is up and serving

  const session = gdbSideBySide(worker, { breakpoint: '*ngx_create_pool' });
  let done = false;
  void session.then(() => (done = true));
  // Requests until gdb has caught one (it needs a moment to attach and set the breakpoint).
  for (let i = 0; i < 100 && !done; i++) {
    await get();
    await new Promise((r) => setTimeout(r, 100));
  }
  const out = await session;
  const gdb = parseGdb(out);
  const ours = parseOursByLen(out).get(32768)!;
  assert.ok(gdb.length >= 6, out);
  assert.equal(gdb[0]!.name, 'ngx_create_pool');
  assert.equal(gdb.at(-1)!.name, 'main');
  assert.deepEqual(ours.slice(0, gdb.length).map((f) => f.pc), gdb.map((f) => f.pc), out);
  const names = ours.map((f) => f.sym);
  for (const fn of ['ngx_create_pool', 'ngx_event_accept', 'ngx_process_events_and_timers', 'ngx_spawn_process', 'main']) {
    assert.ok(names.includes(fn), `${fn} in ${names.join(' < ')}`);
  }
});
