// Text-log throughput: generate an APR pool-debug log of >= 5M lines (httpd-like: a process
// pool, a connection pool cleared per connection, request pools created and destroyed, a leaking
// child pool, interleaved non-pool lines), then time, in one run:
//   - baseline: `grep -c "POOL DEBUG"` over the same file (the floor of reading the text),
//   - the source alone (parse + events into a counting sink),
//   - `leakscope analyze` end to end (the built CLI, bench/support/cli.ts: source + engine +
//     analyses + text report).
// Prints lines/s and the ratios. Target: analyze >= 1M lines/s.
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { aprLogSource } from '../src/sources/apr-log.js';
import { nginxLogSource } from '../src/sources/nginx-log.js';
import { buildCli } from './support/cli.js';
import { root, size, startBench } from './support/record.js';

const bench = startBench('logs');
const LINES = size('LINES', 5_200_000, 1_000_000);

function hex(n: number): string {
  return '0x' + n.toString(16);
}
function line(pid: number, act: string, own: number, total: number, pool: number, tag: string, site: string, parent: number, a: number, t: number, c: number): string {
  return `POOL DEBUG: [${pid}/140113293346688] ${act.padStart(7)} (${String(own).padStart(10)}/${String(own).padStart(10)}/${String(total).padStart(10)}) ${hex(pool)} "${tag}" <${site}> ${hex(parent)} (${a}/${t}/${c}) \n`;
}

async function generate(path: string): Promise<number> {
  const out = createWriteStream(path);
  const pid = 4242;
  const PCONF = 0x555754c20d50, PCHILD = 0x555754c44960, TX = 0x555754c5c7e0, REQ = 0x555754c81ef0;
  let n = 0;
  let total = 500000;
  let pchild = 0;
  let buf = '';
  const put = (s: string) => {
    buf += s;
    n++;
    if (buf.length > 1 << 20) {
      const ok = out.write(buf);
      buf = '';
      if (!ok) return once(out, 'drain');
    }
    return undefined;
  };
  let allocs = 0;
  put(line(pid, 'CREATE', 0, total, PCHILD, 'prefork.c:425', 'prefork.c:425', PCONF, 0, 0, 0));
  put(line(pid, 'CREATE', 0, total, TX, 'prefork.c:448', 'prefork.c:448', PCHILD, 0, 0, 0));
  let conn = 0;
  while (n < LINES) {
    conn++;
    let tx = 0;
    for (let r = 0; r < 3; r++) {
      let req = 0;
      const w0 = put(line(pid, 'CREATE', 0, total, REQ, 'request', 'protocol.c:1000', TX, 0, 0, 0));
      if (w0) await w0;
      for (let i = 0; i < 30; i++) {
        const sz = 8 + ((i * 37) % 200);
        req += sz; total += sz;
        const w = put(line(pid, i % 5 ? ' PALLOC' : 'PCALLOC', req, total, REQ, 'request', `http_request.c:${100 + (i % 12)}`, TX, i + 1, i + 1, 0));
        if (w) await w;
      }
      for (let i = 0; i < 4; i++) {
        tx += 64; total += 64;
        const w = put(line(pid, 'PALLOC', tx, total, TX, 'transaction', 'connection.c:77', PCHILD, i + 1, ++allocs, conn));
        if (w) await w;
      }
      total -= req;
      put(line(pid, 'DESTROY', req, total + req, REQ, 'request', 'http_request.c:400', TX, 30, 30, 0));
      put(line(pid, 'CLEARED', 0, total, REQ, 'request', 'http_request.c:400', TX, 0, 30, 1));
    }
    if (conn % 10 === 0) {
      pchild += 2112; total += 2112;
      put(line(pid, 'PALLOC', pchild, total, PCHILD, 'pchild', 'mod_leaky.c:25', PCONF, conn, conn, 0));
      put(`[Sun Nov 22 05:29:50.593114 2026] [core:notice] [pid ${pid}:tid ${pid}] AH00094: an httpd line between pool lines\n`);
    }
    total -= tx;
    put(line(pid, 'CLEAR', tx, total + tx, TX, 'transaction', 'prefork.c:559', PCHILD, 12, allocs, conn));
    put(line(pid, 'CLEARED', 0, total, TX, 'transaction', 'prefork.c:559', PCHILD, 0, allocs, conn + 1));
  }
  out.write(buf);
  out.end();
  await once(out, 'finish');
  return n;
}

/** An nginx debug log like the fixture's worker: per connection an accept, a request with its
 *  pools and buffers, and the frees; one in 10 requests leaks a 4096-byte pool. */
async function generateNginx(path: string, target: number): Promise<number> {
  const out = createWriteStream(path);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(16, '0');
  let n = 0;
  let buf = '';
  let addr = 0x55b27a200000;
  for (let conn = 1; n < target; conn++) {
    const sec = String(Math.floor(conn / 2000) % 60).padStart(2, '0');
    const p = `2026/11/22 05:30:${sec} [debug] 3643#0: `;
    const c = `${p}*${conn} `;
    const cpool = addr += 0x1000, hbuf = addr += 0x1000, rpool = addr += 0x1000, rblk = addr += 0x1000, mpool = addr += 0x1000;
    const leak = conn % 10 === 0;
    const lines = [
      `${p}accept on 127.0.0.1:18081, ready: 0`, `${p}posix_memalign: ${hex(cpool)}:512 @16`, `${c}accept: 127.0.0.1:43868 fd:3`,
      `${c}http wait request handler`, `${c}malloc: ${hex(hbuf)}:1024`, `${c}recv: fd:3 81 of 1024`,
      `${c}posix_memalign: ${hex(rpool)}:4096 @16`, `${c}http process request line`,
      `${c}http request line: "GET /scratch?${leak ? 'forget' : 'x'}=${conn} HTTP/1.1"`, `${c}http uri: "/scratch"`,
      `${c}http args: "x=${conn}"`, `${c}posix_memalign: ${hex(rblk)}:4096 @16`, `${c}http header: "Host: 127.0.0.1:18081"`,
      `${c}posix_memalign: ${hex(mpool)}:4096 @16`, `${c}add cleanup: ${hex(rpool + 0x100)}`, `${c}http finalize request: 0, "/scratch?x" a:1, c:1`,
      `${c}run cleanup: ${hex(rpool + 0x100)}`, ...(leak ? [] : [`${c}free: ${hex(mpool)}, unused: 3000`]),
      `${c}free: ${hex(rpool)}, unused: 0`, `${c}free: ${hex(rblk)}, unused: 1928`, `${c}free: ${hex(hbuf)}`,
      `${c}close http connection: 3`, `${c}free: ${hex(cpool)}, unused: 144`, `${p}worker cycle`,
    ];
    buf += lines.join('\n') + '\n';
    n += lines.length;
    if (buf.length > 1 << 20) {
      const ok = out.write(buf);
      buf = '';
      if (!ok) await once(out, 'drain');
    }
  }
  out.write(buf);
  out.end();
  await once(out, 'finish');
  return n;
}

function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const v = f();
  return [v, (performance.now() - t0) / 1000];
}

const keep = process.env.KEEP_LOG;
const dir = keep ?? mkdtempSync(join(tmpdir(), 'leakscope-logs-bench-'));
try {
  const main = buildCli(dir);
  const path = join(dir, 'apr-pool-debug.log');
  const lines = await generate(path);
  const mb = statSync(path).size / 1e6;
  console.log(`generated ${lines.toLocaleString('en')} lines, ${mb.toFixed(0)} MB`);

  const [grep, tGrep] = time(() => spawnSync('grep', ['-c', 'POOL DEBUG', path], { encoding: 'utf8' }));
  if (grep.status !== 0) throw new Error(`grep: ${grep.stderr}`);

  const t0 = performance.now();
  let events = 0;
  await aprLogSource.read({ path, stream: createReadStream(path, { highWaterMark: 1 << 20 }) }, { event() { events++; } });
  const tSource = (performance.now() - t0) / 1000;

  const rate = (t: number) => `${(lines / t / 1e6).toFixed(2)}M lines/s`;
  console.log(`baseline grep -c:        ${tGrep.toFixed(2)} s  ${rate(tGrep)}`);
  console.log(`apr-log source alone:    ${tSource.toFixed(2)} s  ${rate(tSource)}  (${events.toLocaleString('en')} events)`);
  // Wall time, and CPU time from /usr/bin/time (a fairer figure on a busy machine).
  const [an, tAnalyze] = time(() => spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, main, 'analyze', path],
    { cwd: root, encoding: 'utf8', env: { ...process.env, CI: '1' }, maxBuffer: 64 << 20 }));
  if (an.status !== 0) throw new Error(`analyze failed: ${an.stderr}`);
  const cpuM = /CPU ([\d.]+) ([\d.]+)/.exec(an.stderr);
  const cpu = cpuM ? Number(cpuM[1]) + Number(cpuM[2]) : NaN;
  const verdictLine = an.stdout.split('\n').find((l) => l.startsWith('Verdict:')) ?? '';

  console.log(`leakscope analyze (CLI): ${tAnalyze.toFixed(2)} s  ${rate(tAnalyze)}  ${verdictLine.slice(0, 60)}`);
  console.log(`leakscope analyze CPU:   ${cpu.toFixed(2)} s  ${rate(cpu)}  (user+sys)`);
  console.log(`ratio analyze/grep: ${(tAnalyze / tGrep).toFixed(1)}x slower; analyze/source: ${(tAnalyze / tSource).toFixed(2)}x`);
  console.log(`target >= 1M lines/s end to end: ${lines / tAnalyze >= 1e6 ? 'met' : 'NOT met'} (wall), ${lines / cpu >= 1e6 ? 'met' : 'NOT met'} (CPU)`);

  // nginx debug log: the same measures.
  rmSync(path, { force: true });
  const npath = join(dir, 'nginx-debug.log');
  const nlines = await generateNginx(npath, size('NGX_LINES', 2_000_000, 400_000));
  console.log(`\ngenerated nginx debug log: ${nlines.toLocaleString('en')} lines, ${(statSync(npath).size / 1e6).toFixed(0)} MB`);
  const n0 = performance.now();
  let nevents = 0;
  await nginxLogSource.read({ path: npath, stream: createReadStream(npath, { highWaterMark: 1 << 20 }) }, { event() { nevents++; } });
  const tn = (performance.now() - n0) / 1000;
  const [nan, tnAnalyze] = time(() => spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, main, 'analyze', npath],
    { cwd: root, encoding: 'utf8', env: { ...process.env, CI: '1' }, maxBuffer: 64 << 20 }));
  if (nan.status !== 0) throw new Error(`analyze failed: ${nan.stderr}`);
  const ncpuM = /CPU ([\d.]+) ([\d.]+)/.exec(nan.stderr);
  const ncpu = ncpuM ? Number(ncpuM[1]) + Number(ncpuM[2]) : NaN;
  const nrate = (t: number) => `${(nlines / t / 1e6).toFixed(2)}M lines/s`;
  const scratch = nan.stdout.split('\n').find((l) => l.trimEnd().endsWith('GET /scratch')) ?? '';
  console.log(`nginx-log source alone:  ${tn.toFixed(2)} s  ${nrate(tn)}  (${nevents.toLocaleString('en')} events)`);
  console.log(`leakscope analyze (CLI): ${tnAnalyze.toFixed(2)} s  ${nrate(tnAnalyze)}; CPU ${ncpu.toFixed(2)} s  ${nrate(ncpu)}`);
  console.log(`  top site: ${scratch.trim()}`);
  bench.finish({
    apr: { lines, grepS: tGrep, sourceS: tSource, analyzeWallS: tAnalyze, analyzeCpuS: cpu },
    nginx: { lines: nlines, sourceS: tn, analyzeWallS: tnAnalyze, analyzeCpuS: ncpu },
  });
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
