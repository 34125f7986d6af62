// attach overhead on Debian's apache2 (prefork, 2 children, our config), keepalive requests for
// a 3-byte static file (`/`) under wrk on loopback: untraced, and traced by `leakscope attach
// --pid MASTER --children` with the apr profile: by default (`auto`: the probes for a 5 s
// decision window, then walk mode if they are hit more than the budget allows, as wrk makes
// them), with `--mode events` (pool lifecycle probes, sizes read from the pools, the discovery
// walk of the pools alive at attach) and with `--mode walk` (no probe). Traced runs sit between
// untraced runs and are compared to the mean of their two neighbours.
// The default's run starts wrk as tracing starts, for the decision window, then again for
// ATTACH_BENCH_SECONDS: its req/s over both (the whole cost, the window included) and over the
// second (after the decision: the best case), with the mode it ended in and when it decided.
// The events mode's cost per request is split (bench/support/cost.ts) in the same run: the
// uprobe traps alone (the same probes with programs that return at once, LEAKSCOPE_BPF_BARE),
// the BPF programs' own run time (kernel BPF stats), the rest of apache's extra CPU, and the CPU
// of the loader and of node per request.
// Needs root. `npm run bench -- attach` (with attach.bench.ts) or `-- attach-apache`;
// ATTACH_BENCH_SECONDS per wrk run (default 3; --quick 1), APACHE_BENCH_ROUNDS (default 3;
// --quick 1), APACHE_BENCH_TRACERS=auto,events,floor,nostack,walk (default: auto,events,floor,walk).
// Writes bench/results/attach-apache.json.

import { spawn } from 'node:child_process';
import { buildCli } from './support/cli.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApache } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';
import { atExit, bpfStatsOn, loaderOf, Meter, run, track, treeOf } from './support/cost.js';
import { root, size, startBench, type Figure } from './support/record.js';
import { DECISION_WINDOW_MS } from '../src/attach/auto-mode.js';

const bench = startBench('attach-apache');
const SECONDS = size('ATTACH_BENCH_SECONDS', 3, 1);
const ROUNDS = size('APACHE_BENCH_ROUNDS', 3, 1);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-apache-bench-'));
// The CLI as users run it (tsc output): under tsx, its loader thread's compiling was counted as
// tracer CPU per request.
const cli = buildCli(dir);
atExit(() => rmSync(dir, { recursive: true, force: true }));

interface Tracer { key: string; name: string; args: string[]; env?: Record<string, string> }
const TRACERS: Tracer[] = [
  { key: 'auto', name: 'the default (--mode auto, the default budget)', args: [] },
  { key: 'events', name: '--mode events: the pool lifecycle probes', args: ['--mode', 'events'] },
  { key: 'floor', name: 'the same probes, programs that return at once', args: ['--mode', 'events'], env: { LEAKSCOPE_BPF_BARE: '1' } },
  { key: 'nostack', name: '--mode events, --stack-bytes 0', args: ['--mode', 'events', '--stack-bytes', '0'] },
  { key: 'walk', name: '--mode walk: no probe, the pool trees walked every 2 s', args: ['--mode', 'walk'] },
];
const want = (process.env.APACHE_BENCH_TRACERS ?? 'auto,events,floor,walk').split(',');
const WINDOW_S = DECISION_WINDOW_MS / 1000;
const tracers = TRACERS.filter((t) => want.includes(t.key));

/** wrk's request rate and count; the shell's `times` gives wrk's own CPU. */
async function wrk(port: number, seconds = SECONDS): Promise<{ rps: number; requests: number; wrkUs: number }> {
  const script = 'trap \'kill $p 2>/dev/null\' TERM INT; wrk "$@" & p=$!; wait $p; times';
  const r = await run('bash', ['-c', script, 'wrk', '-t1', '-c2', `-d${seconds}s`, `http://127.0.0.1:${port}/`]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const reqs = /(\d+) requests in/.exec(r.stdout);
  if (!rps || !reqs || /Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  const times = r.stdout.trim().split('\n').pop()!.match(/(\d+)m([\d.]+)s/g) ?? [];
  const sec = (t: string) => { const m = /(\d+)m([\d.]+)s/.exec(t)!; return Number(m[1]) * 60 + Number(m[2]); };
  const requests = Number(reqs[1]);
  return { rps: Number(rps[1]), requests, wrkUs: times.length >= 2 ? ((sec(times[0]!) + sec(times[1]!)) * 1e6) / requests : NaN };
}

interface Measured { rps: number; requests: number; wrkUs: number; apacheUs: number; loaderUs: number; nodeUs: number; bpfUs: number; hits: number }

async function measure(port: number, master: number, tracerPid?: number, seconds = SECONDS): Promise<Measured> {
  const loader = tracerPid ? loaderOf(tracerPid) : undefined;
  const m = new Meter({
    apache: () => treeOf(master),
    loader: () => (loader ? [loader] : []),
    node: () => (tracerPid ? [tracerPid] : []),
  }, () => loader);
  m.start();
  const w = await wrk(port, seconds);
  const c = m.stop(w.requests);
  // auto mode switched loaders meanwhile: the loader's figures are not one process's
  if (tracerPid && loaderOf(tracerPid) !== loader) return { ...w, apacheUs: c.apache!, loaderUs: NaN, nodeUs: c.node!, bpfUs: NaN, hits: NaN };
  return { ...w, apacheUs: c.apache!, loaderUs: c.loader!, nodeUs: c.node!, bpfUs: c.bpf ?? 0, hits: c.hits ?? 0 };
}

interface Note { calls: number; found: number; lost: number }
/** What the tracer said so far, and when (ms after it said it traced) auto mode's line came (a
 *  switch to walk mode is said once the walk runs, after the probes were stopped). */
interface Tracing { pid: number; said(): string; decidedMs(): number | undefined }
async function traced<T>(master: number, t: Tracer, f: (x: Tracing) => Promise<T>): Promise<{ value: T; note: string; counts: Note }> {
  const trace = join(dir, 'bench.lstrace');
  const child = track(spawn(process.execPath, [cli, 'attach', '--pid', String(master), '--children', ...t.args, '-o', trace, '--no-report'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...t.env } }));
  let err = '';
  let tracingAt = 0;
  let decidedAt: number | undefined;
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (!tracingAt && err.includes('leakscope: tracing')) {
        tracingAt = Date.now();
        resolve();
      }
      if (decidedAt === undefined && /^leakscope: (warning: )?auto mode: /m.test(err)) decidedAt = Date.now();
    });
    child.once('exit', () => reject(new Error(`attach exited: ${err}`)));
  });
  // every child attached and walked; not for the default, whose decision window starts now
  if (t.key !== 'auto') await new Promise((r) => setTimeout(r, 1000));
  const value = await f({ pid: child.pid!, said: () => err, decidedMs: () => (decidedAt === undefined ? undefined : decidedAt - tracingAt) });
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  await done;
  rmSync(trace, { force: true });
  const found = /(\d+) pools alive before the trace found/.exec(err)?.[1] ?? '?';
  const lost = /(\d+) events were lost/.exec(err)?.[1];
  const calls = /\((\d+) calls/.exec(err)?.[1] ?? '?';
  return { value, note: `${calls} calls, ${found} pools found at attach${lost ? `, ${lost} LOST` : ''}`, counts: { calls: Number(calls), found: Number(found), lost: Number(lost ?? 0) } };
}

/** The default's run: wrk from the moment tracing starts, for the decision window, then again
 *  for SECONDS; the req/s of both together is the whole cost, the second's the best case. */
interface AutoMeasured { window: Measured; after: Measured; wholeRps: number; mode: string; decidedS: number | undefined; line: string }
async function measureAuto(port: number, master: number, x: Tracing): Promise<AutoMeasured> {
  const window = await measure(port, master, x.pid, WINDOW_S);
  const after = await measure(port, master, x.pid, SECONDS);
  const line = x.said().split('\n').find((l) => /^leakscope: (warning: )?auto mode: /.test(l)) ?? '';
  const mode = /switched to walk mode/.test(line) ? 'walk' : /the probes stay/.test(line) ? 'events' : 'undecided';
  const d = x.decidedMs();
  return { window, after, wholeRps: (window.requests + after.requests) / (WINDOW_S + SECONDS), mode, decidedS: d === undefined ? undefined : d / 1000, line };
}

const f1 = (x: number) => x.toFixed(1);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const port = await freePort();
const server = await startApache(join(dir, 'srv'), port, 'StartServers 2\nMinSpareServers 2\nMaxSpareServers 2\nMaxRequestWorkers 2\n');
track(server.master);
const restoreStats = bpfStatsOn();
try {
  const master = server.master.pid!;
  console.log(`apache2 prefork, 2 children, wrk -t1 -c2 -d${SECONDS}s keepalive GET /; load average ${load()}`);
  await wrk(port); // warm-up
  const plain: Measured[] = [await measure(port, master)];
  // NaN: not measured (auto mode's window spans two loaders), shown as a dash
  const g = (v: number) => (Number.isNaN(v) ? '—' : f1(v));
  const line = (label: string, r: Measured, extra = '') =>
    `  ${label.padEnd(22)} ${r.rps.toFixed(0).padStart(6)} req/s  apache ${g(r.apacheUs).padStart(5)} µs/req  bpf ${g(r.bpfUs).padStart(5)} (${g(r.hits)} hits)  loader ${g(r.loaderUs).padStart(5)}  node ${g(r.nodeUs).padStart(5)}  wrk ${g(r.wrkUs).padStart(5)}${extra}`;
  console.log(line('untraced', plain[0]!));
  const rounds: Record<string, Figure>[] = [];
  const byTracer = new Map<string, { r: Measured; base: Measured }[]>();
  for (let i = 0; i < ROUNDS; i++) {
    for (const t of tracers) {
      const before = plain[plain.length - 1]!;
      if (t.key === 'auto') {
        const tr = await traced(master, t, (x) => measureAuto(port, master, x));
        const after = await measure(port, master);
        plain.push(after);
        const baseRps = (before.rps + after.rps) / 2;
        const a = tr.value;
        const ratio = a.wholeRps / baseRps;
        console.log(line(`auto, window (round ${i + 1})`, a.window, ` = ${((a.window.rps / baseRps) * 100).toFixed(1)}% of ${baseRps.toFixed(0)} (the first ${WINDOW_S} s: the decision window)`));
        console.log(line(`auto, after (round ${i + 1})`, a.after, ` = ${((a.after.rps / baseRps) * 100).toFixed(1)}% (the next ${SECONDS} s)`));
        console.log(`  auto (round ${i + 1}): ${a.wholeRps.toFixed(0)} req/s over the whole ${WINDOW_S + SECONDS} s = ${(ratio * 100).toFixed(1)}%; ended in ${a.mode} mode, its line ${a.decidedS === undefined ? 'never came' : `came ${a.decidedS.toFixed(1)} s after tracing began`} (${tr.note}; load ${loadavg()[0]!.toFixed(2)})\n    ${a.line}`);
        console.log(line('untraced', after));
        const base: Measured = { ...before, rps: baseRps, apacheUs: (before.apacheUs + after.apacheUs) / 2, wrkUs: (before.wrkUs + after.wrkUs) / 2 };
        // the split below takes the part after the decision (the steady state)
        if (!byTracer.has(t.key)) byTracer.set(t.key, []);
        byTracer.get(t.key)!.push({ r: a.after, base });
        rounds.push({ round: i + 1, tracer: t.key, untracedBefore: before.rps, untracedAfter: after.rps, traced: a.wholeRps, ratio, windowSeconds: WINDOW_S, afterSeconds: SECONDS,
          windowRps: a.window.rps, windowRatio: a.window.rps / baseRps, afterRps: a.after.rps, afterRatio: a.after.rps / baseRps, mode: a.mode, ...(a.decidedS === undefined ? {} : { decidedS: a.decidedS }), ...tr.counts,
          apacheUs: a.after.apacheUs, apacheUsUntraced: base.apacheUs, bpfUs: a.after.bpfUs, hitsPerRequest: a.after.hits, loaderUs: a.after.loaderUs, nodeUs: a.after.nodeUs, wrkUs: a.after.wrkUs, load: loadavg()[0]! });
        continue;
      }
      const tr = await traced(master, t, (x) => measure(port, master, x.pid));
      const after = await measure(port, master);
      plain.push(after);
      const base: Measured = { ...before, rps: (before.rps + after.rps) / 2, apacheUs: (before.apacheUs + after.apacheUs) / 2, wrkUs: (before.wrkUs + after.wrkUs) / 2 };
      const ratio = tr.value.rps / base.rps;
      console.log(line(`${t.key} (round ${i + 1})`, tr.value, ` = ${(ratio * 100).toFixed(1)}% of ${base.rps.toFixed(0)} (${tr.note}; load ${loadavg()[0]!.toFixed(2)})`));
      console.log(line('untraced', after));
      if (!byTracer.has(t.key)) byTracer.set(t.key, []);
      byTracer.get(t.key)!.push({ r: tr.value, base });
      rounds.push({ round: i + 1, tracer: t.key, untracedBefore: before.rps, untracedAfter: after.rps, traced: tr.value.rps, ratio, ...tr.counts,
        apacheUs: tr.value.apacheUs, apacheUsUntraced: base.apacheUs, bpfUs: tr.value.bpfUs, hitsPerRequest: tr.value.hits, loaderUs: tr.value.loaderUs, nodeUs: tr.value.nodeUs, wrkUs: tr.value.wrkUs, load: loadavg()[0]! });
    }
  }
  // the split per request, from the means over the rounds
  const avg = (key: string, f: (x: { r: Measured; base: Measured }) => number) => mean((byTracer.get(key) ?? []).map(f));
  const split: Record<string, Figure> = {};
  const untracedUs = mean(plain.map((p) => p.apacheUs));
  console.log(`\nper request (µs, means over ${ROUNDS} round(s); auto: the ${SECONDS} s after its window); apache untraced ${f1(untracedUs)} µs/req:`);
  for (const t of tracers) {
    const extra = avg(t.key, (x) => x.r.apacheUs - x.base.apacheUs);
    const s = {
      ratio: avg(t.key, (x) => x.r.rps / x.base.rps),
      apacheExtraUs: extra,
      bpfUs: avg(t.key, (x) => x.r.bpfUs),
      hitsPerRequest: avg(t.key, (x) => x.r.hits),
      loaderUs: avg(t.key, (x) => x.r.loaderUs),
      nodeUs: avg(t.key, (x) => x.r.nodeUs),
    };
    split[t.key] = s;
    console.log(`  ${t.key.padEnd(8)} ${(s.ratio * 100).toFixed(1)}% of untraced req/s; apache +${f1(extra)} (of which BPF programs ${f1(s.bpfUs)}, ${f1(s.hitsPerRequest)} probe hits), loader ${f1(s.loaderUs)}, node ${f1(s.nodeUs)}`);
  }
  if (byTracer.has('floor') && byTracer.has('events')) {
    const traps = (split.floor as Record<string, number>).apacheExtraUs!;
    const d = split.events as Record<string, number>;
    // APR's probes are entry and return probes with a program each: a hit is a trap
    const perHit = traps / (split.floor as Record<string, number>).hitsPerRequest!;
    split.eventsSplit = { trapsUs: traps, trapUsPerHit: perHit, bpfUs: d.bpfUs!, apacheRestUs: d.apacheExtraUs! - traps - d.bpfUs!, loaderUs: d.loaderUs!, nodeUs: d.nodeUs!, trapsShareOfUntraced: traps / untracedUs };
    console.log(`  events = traps ${f1(traps)} + BPF programs ${f1(d.bpfUs!)} + rest of apache ${f1(d.apacheExtraUs! - traps - d.bpfUs!)} µs in apache, + loader ${f1(d.loaderUs!)} + node ${f1(d.nodeUs!)} µs beside it; the traps alone (${f1(perHit)} µs per probe hit) are ${((traps / untracedUs) * 100).toFixed(1)}% of an untraced request's apache CPU`);
  }
  bench.finish({ seconds: SECONDS, untracedApacheUs: untracedUs, rounds, split });
  console.log(`load average at the end ${load()}`);
} finally {
  restoreStats();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
