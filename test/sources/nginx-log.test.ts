import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import { nginxLogSource, NginxLogDecoder } from '../../src/sources/nginx-log.js';
import { collect, fixtureText, type Collected } from './collect.js';
import { freePort } from '../support/ports.js';

const FIXTURE = 'nginx-debug.1worker.log.gz';

/** Outstanding allocations at the end, grouped by pid and stack labels (outer frame last). */
function outstanding(c: Collected): Map<string, { count: number; bytes: number; addrs: number[] }> {
  const live = new Map<string, Extract<Event, { kind: 'alloc' }>>();
  for (const e of c.events) {
    if (e.kind === 'alloc') live.set(`${e.pid}:${e.addr}`, e);
    else if (e.kind === 'free') live.delete(`${e.pid}:${e.addr}`);
  }
  const groups = new Map<string, { count: number; bytes: number; addrs: number[] }>();
  for (const e of live.values()) {
    const k = `${e.pid} ${c.frames(e.pid, e.stack).map((f) => f.fn).join(' < ')}`;
    const g = groups.get(k) ?? { count: 0, bytes: 0, addrs: [] };
    g.count++;
    g.bytes += e.size;
    g.addrs.push(e.addr);
    groups.set(k, g);
  }
  return groups;
}

/** The expected leaks, found the slow obvious way: blocks never freed, and their connection's request. */
function naiveLeaks(text: string): { addr: number; request: string }[] {
  const live = new Map<string, { conn: string }>();
  const request = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\S+ \S+ \[\w+\] (\d+)#\d+: (?:\*(\d+) )?(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, conn = '', msg] = m;
    let a: RegExpExecArray | null;
    if ((a = /^(?:posix_memalign|malloc|memalign): ([0-9A-F]+):\d+/.exec(msg!))) live.set(`${pid}:${a[1]}`, { conn: `${pid}:${conn}` });
    else if ((a = /^free: ([0-9A-F]+)/.exec(msg!))) live.delete(`${pid}:${a[1]}`);
    else if ((a = /^http request line: "(.*)"/.exec(msg!))) request.set(`${pid}:${conn}`, a[1]!);
  }
  return [...live.entries()].filter(([, v]) => !v.conn.endsWith(':')).map(([k, v]) => ({ addr: parseInt(k.split(':')[1]!, 16), request: request.get(v.conn) ?? '' }));
}

test('nginx fixture: 30 leaked 4096-byte pool blocks, all on /scratch?forget connections, nothing for /ok', async () => {
  const text = fixtureText(FIXTURE);
  const c = await collect(nginxLogSource, text);
  assert.equal(c.stats.badRecords, 0);
  const groups = outstanding(c);
  const scratch = groups.get('3643 ngx_memalign < GET /scratch');
  assert.ok(scratch, `groups: ${[...groups.keys()].join(' | ')}`);
  assert.equal(scratch.count, 30);
  assert.equal(scratch.bytes, 30 * 4096);
  assert.ok(![...groups.keys()].some((k) => k.includes('/ok')), 'nothing outstanding for /ok');
  // Cross-check with an independent reading of the log.
  const naive = naiveLeaks(text.toString('latin1'));
  assert.equal(naive.length, 30);
  for (const n of naive) assert.match(n.request, /^GET \/scratch\?forget=\d+ HTTP/);
  assert.deepEqual([...scratch.addrs].sort(), naive.map((n) => n.addr).sort());
  // Processes: the worker's parent is the master that started it.
  const procs = c.events.filter((e) => e.kind === 'process');
  assert.deepEqual(procs.find((p) => p.pid === 3643 && p.kind === 'process' && p.ppid === 3641)?.pid, 3643);
  const titles = procs.map((p) => p.kind === 'process' && `${p.pid} ${p.command}`);
  assert.ok(titles.includes('3643 nginx: worker process') && titles.includes('3641 nginx: master process ./sbin/nginx'), titles.join(', '));
  // Timestamps: t in ns from the first line's second.
  const last = c.events.filter((e) => e.kind === 'alloc').at(-1)!;
  assert.ok(last.t > 0 && last.t <= 5e9, `t=${last.t}`);
});

test('nginx fixture cut at many points and in small chunks: never an error', async () => {
  const text = fixtureText(FIXTURE);
  for (let i = 1; i <= 40; i++) {
    const cut = Math.floor((text.length * i) / 41) + (i % 11);
    const c = await collect(nginxLogSource, text.subarray(0, cut), 1 + (i * 37) % 4000);
    assert.ok(c.stats.badRecords <= 1, `cut at ${cut}: ${c.stats.badSamples.join('; ')}`);
    for (const e of c.events) if (e.kind === 'alloc') c.frames(e.pid, e.stack); // every stack is defined
  }
});

test('nginx: a restarted worker (new PID) keeps its own connections; buffered blocks freed early vanish', async () => {
  const pre = (pid: number, conn?: number) => `2026/11/22 05:30:02 [debug] ${pid}#0: ${conn ? `*${conn} ` : ''}`;
  const log = [
    `${pre(100)}start worker process 200`,
    `${pre(200)}posix_memalign: 00000000000A0000:512 @16`,
    `${pre(200, 1)}accept: 127.0.0.1:4000 fd:3`,
    `${pre(200, 1)}malloc: 00000000000B0000:1024`,
    `${pre(200, 1)}free: 00000000000B0000`,
    `${pre(200, 1)}posix_memalign: 00000000000C0000:4096 @16`,
    `${pre(200, 1)}http request line: "POST /upload?x=1 HTTP/1.1"`,
    `${pre(200, 1)}http uri: "/upload"`,
    `${pre(200, 1)}malloc: 00000000000D0000:100`,
    `${pre(200, 1)}memalign: 00000000000D8000:2048 @16`,
    `${pre(200, 1)}add cleanup: 00000000000E0000`,
    `${pre(300)}add cleanup: 00000000000F0000`,
    `HTTP/1.1 200 OK`,
    // The new worker logs before its master says it started it (a busy machine).
    `${pre(300)}posix_memalign: 00000000000A0000:512 @16`,
    `${pre(300, 1)}accept: 127.0.0.1:4001 fd:3`,
    `${pre(300, 1)}posix_memalign: 00000000000C0000:4096 @16`,
    `${pre(300, 1)}malloc: 0000000000100000:10`,
    `${pre(300, 1)}free: 0000000000100000`,
    `${pre(100)}start worker process 300`,
    `${pre(300, 1)}http request line: "GET /other HTTP/1.1"`,
    `${pre(300, 1)}free: 00000000000C0000, unused: 10`,
    `${pre(300, 1)}close http connection: 3`,
    `${pre(300, 1)}free: 00000000000A0000, unused: 100`,
    `${pre(200, 1)}malloc: 000000000000`,
  ].join('\n') + '\n';
  const c = await collect(nginxLogSource, log);
  const g = outstanding(c);
  assert.deepEqual([...g.entries()].map(([k, v]) => `${k} ${v.count} ${v.bytes}`).sort(), [
    '200 ngx_alloc < POST /upload 1 100',
    '200 ngx_memalign < POST /upload 3 6656',
  ]);
  assert.equal(c.stats.badRecords, 1);
  assert.equal(c.stats.skipped, 1);
  assert.deepEqual(c.stats.warnings.filter((w) => w.includes('cleanup')), [
    'pid 200: 1 pool cleanup handler(s) added on a connection and never run (their pools were likely never destroyed)',
  ]);
  const procs = c.events.filter((e) => e.kind === 'process').map((e) => e.kind === 'process' && `${e.pid}<${e.ppid}`);
  assert.deepEqual(procs.sort(), ['100<0', '200<100', '300<100']);
  assert.ok(!c.events.some((e) => e.kind === 'alloc' && e.addr === 0xb0000), 'allocated and freed before the request: no events');
});

test('nginx live: Debian nginx with error_log debug, curl requests, analyze its log', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-ngx-'));
  const port = await freePort();
  const log = join(dir, 'error.log');
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${log} debug;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location /ok { return 200 "ok\\n"; }
    location /big { return 200 "big\\n"; }
  }
}
`);
  const ngx = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', log], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  ngx.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((res) => ngx.on('exit', () => res()));
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      await new Promise((r) => setTimeout(r, 50));
      try { execFileSync('curl', ['-sf', '-o', '/dev/null', `http://127.0.0.1:${port}/ok`]); up = true; } catch { /* not yet */ }
    }
    assert.ok(up, `nginx did not come up: ${stderr}`);
    for (let i = 0; i < 10; i++) execFileSync('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}/ok?i=${i}`, `http://127.0.0.1:${port}/big?n=${i}`, `http://127.0.0.1:${port}/missing`]);
  } finally {
    ngx.kill('SIGQUIT'); // graceful stop of exactly the master we started
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (ngx.exitCode === null && ngx.signalCode === null) ngx.kill('SIGKILL');
  }
  assert.ok(existsSync(log));
  const c = await collect(nginxLogSource, readFileSync(log));
  rmSync(dir, { recursive: true, force: true });
  assert.equal(c.stats.badRecords, 0, c.stats.badSamples.join('\n'));
  const procs = c.events.filter((e) => e.kind === 'process');
  const worker = procs.find((p) => p.kind === 'process' && p.ppid !== 0);
  assert.ok(worker && worker.kind === 'process' && worker.ppid === ngx.pid, `the worker and its master ${ngx.pid}: ${JSON.stringify(procs)}`);
  const allocs = c.events.filter((e) => e.kind === 'alloc' && e.pid === worker.pid);
  const labels = new Set(allocs.map((e) => e.kind === 'alloc' && c.frames(e.pid, e.stack).at(-1)!.fn));
  assert.ok(labels.has('GET /ok') && labels.has('GET /big') && labels.has('GET /missing'), [...labels].join(', '));
  const g = outstanding(c);
  assert.ok(![...g.keys()].some((k) => k.includes('GET /')), `every request's memory was released: ${[...g.keys()].join(' | ')}`);
});

test('nginx: state stays bounded over many connections and distinct paths', () => {
  const events: Event[] = [];
  const dec = new NginxLogDecoder({ event: (e) => events.push(e) });
  const lines: string[] = [];
  const pre = (conn?: number) => `2026/11/22 05:30:02 [debug] 77#0: ${conn ? `*${conn} ` : ''}`;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(16, '0');
  for (let i = 1; i <= 12000; i++) {
    lines.push(`${pre()}posix_memalign: ${hex(0x100000 + i * 0x1000)}:512 @16`, `${pre(i)}accept: 127.0.0.1:1 fd:3`,
      `${pre(i)}posix_memalign: ${hex(0x90000000 + i * 0x2000)}:4096 @16`, `${pre(i)}http request line: "GET /item/${i}?q HTTP/1.1"`,
      `${pre(i)}close http connection: 3`, `${pre(i)}free: ${hex(0x100000 + i * 0x1000)}, unused: 8`);
  }
  const buf = Buffer.from(lines.join('\n') + '\n');
  let s = 0;
  for (let i = buf.indexOf(10); i >= 0; s = i + 1, i = buf.indexOf(10, s)) dec.line(buf, s, i);
  const size = dec.stateSize();
  assert.equal(size.conns, 0);
  assert.equal(size.waiting, 0);
  assert.ok(size.closed <= 1024);
  assert.ok(size.sites <= 10001, `${size.sites} sites`);
  dec.finish();
  const allocs = events.filter((e) => e.kind === 'alloc').length;
  assert.equal(allocs, 24000);
  const frees = events.filter((e) => e.kind === 'free').length;
  assert.equal(frees, 12000);
});

test('nginx fixture: pool destroys are counted from rows of "free: ADDR, unused: N" lines', () => {
  const text = fixtureText(FIXTURE);
  const dec = new NginxLogDecoder({ event() {} });
  let s = 0;
  for (let i = text.indexOf(10); i >= 0; s = i + 1, i = text.indexOf(10, s)) dec.line(text, s, i);
  dec.finish();
  // Independently: a row starts at an "unused" free whose previous line of the same pid is not one.
  const last = new Map<string, boolean>();
  const rows = new Map<string, number>();
  for (const line of text.toString('latin1').split('\n')) {
    const m = /^\S+ \S+ \[\w+\] (\d+)#\d+: (?:\*\d+ )?(.*)$/.exec(line);
    if (!m) continue;
    const isBlock = /^free: [0-9A-F]+, unused: \d+/.test(m[2]!);
    if (isBlock && !last.get(m[1]!)) rows.set(m[1]!, (rows.get(m[1]!) ?? 0) + 1);
    last.set(m[1]!, isBlock);
  }
  assert.ok((rows.get('3643') ?? 0) > 60);
  assert.deepEqual(Object.fromEntries([...dec.poolDestroys].filter(([, n]) => n > 0).map(([p, n]) => [String(p), n])), Object.fromEntries(rows));
});

test('nginx: a log without allocation lines says how to get them', async () => {
  const c = await collect(nginxLogSource, '2026/11/22 05:30:01 [notice] 3640#0: nginx/1.31.4\n2026/11/22 05:30:01 [notice] 3640#0: start worker processes\n');
  assert.match(c.stats.warnings.join('\n'), /no allocation lines .* "error_log FILE debug;"/);
  const d = await collect(nginxLogSource, 'just some text\n');
  assert.match(d.stats.warnings.join('\n'), /no nginx log lines found/);
});
