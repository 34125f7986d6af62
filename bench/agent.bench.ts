// The agent's soak: `leakscope agent` (built, dist/) watching Debian nginx (a private copy, 1
// worker) kept busy by wrk for 10 minutes (--quick: 2). Each minute it prints the agent's RSS
// (the agent, its HTTP side and the BPF loader) and CPU, and the server's req/s traced on two
// workloads: a realistic request (a 4 KiB static file, a new connection per request: nginx's CPU
// per request is printed, it should be >= 30 µs) and the trivial one (`return 200`, keepalive).
// The untraced req/s of both is measured in the same run, before the agent starts and after it
// stops, and their mean is the baseline. Targets: agent RSS growth <= 5% after the first minute;
// realistic req/s >= 95% of untraced.
// The figures go to bench/results/agent.json (bench/support/record.ts), from which BENCHMARKS.md's
// rows are generated (bench/table.ts).
// Each minute also splits the nginx worker's CPU per request (bench/support/cost.ts): the BPF
// programs' own run time per request and probe hits per request (kernel BPF stats), and the
// agent's node and loader CPU per request, so a cost that grows over the soak shows where it is.
// The agent runs with its defaults: `auto` mode under the probes' budget (src/attach/governor.ts),
// which switches a busy nginx to walk mode; each minute's row says the mode the target was in at
// its end, the switches are printed with their time and log line, and the req/s of the minutes
// in each mode are given beside the mean over the soak.
// Needs root. `npm run bench -- agent` (`npm run bench -- --quick agent`: 2 minutes;
// LSBENCH_AGENT_MINUTES=N; LSBENCH_AGENT_MODE=walk for the target's mode).

import { spawn, spawnSync } from 'node:child_process';
import { atExit, bpfStatsOn, childrenOf, cpuUs, loaderOf, Meter, run, track } from './support/cost.js';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';
import { quick, root, size, startBench } from './support/record.js';

const MINUTES = size('LSBENCH_AGENT_MINUTES', 10, 2);
const PHASE_S = quick ? 12 : 25;
/** The target's mode (LSBENCH_AGENT_MODE=walk|events|aggregate); the agent's default when unset. */
const MODE = process.env.LSBENCH_AGENT_MODE;
if (MODE !== undefined && !['walk', 'events', 'aggregate', 'auto'].includes(MODE)) throw new Error(`LSBENCH_AGENT_MODE: ${MODE} is not walk, events, aggregate or auto`);
function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface Wl { name: string; path: string; close: boolean }
const REAL: Wl = { name: '4 KiB file, Connection: close', path: '/static/index.html', close: true };
const TRIVIAL: Wl = { name: 'return 200, keepalive', path: '/', close: false };

interface WrkRun { rps: number; workerUs: number; bpfUs: number; hits: number; nodeUs: number; loaderUs: number }

/** One wrk run; with the agent's pid, the worker's extra CPU split (bench/support/cost.ts). */
async function wrk(port: number, w: Wl, seconds: number, worker: number, agentPid?: number): Promise<WrkRun> {
  const args = ['-t1', '-c16', `-d${seconds}s`, ...(w.close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}${w.path}`];
  const loader = agentPid ? loaderOf(agentPid) : undefined;
  const m = new Meter({ worker: () => [worker], node: () => (agentPid ? [agentPid] : []), loader: () => (loader ? [loader] : []) }, () => loader);
  m.start();
  const r = await run('wrk', args);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const reqs = /(\d+) requests in/.exec(r.stdout);
  if (!rps || !reqs) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  const c = m.stop(Number(reqs[1]));
  return { rps: Number(rps[1]), workerUs: c.worker!, bpfUs: c.bpf ?? 0, hits: c.hits ?? 0, nodeUs: c.node!, loaderUs: c.loader! };
}

function newestMtime(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(ext)) t = Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the agent bench needs root');
  // the built agent is what is measured: build it if the sources are newer
  if (newestMtime(join(root, 'src'), '.ts') > newestMtime(join(root, 'dist'), '.js')) {
    console.log('building dist/ (tsc)');
    const b = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('tsc failed');
  }
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  const run = startBench('agent');
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-agent-bench-'));
  const port = await freePort();
  const server = await startNginx(dir, port, 1);
  track(server.master);
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  const restoreStats = bpfStatsOn();
  const load = () => loadavg()[0]!.toFixed(1);
  try {
    const worker = childrenOf(server.master.pid!)[0]!;
    console.log(`agent soak at ${commit}: nginx 1 worker, wrk -t1 -c16, ${PHASE_S}s per workload; ${MINUTES} minutes; load ${load()}`);
    await wrk(port, REAL, 3, worker);
    await wrk(port, TRIVIAL, 3, worker); // warm-up
    const before = { real: await wrk(port, REAL, PHASE_S, worker), trivial: await wrk(port, TRIVIAL, PHASE_S, worker) };
    console.log(`untraced before: ${before.real.rps.toFixed(0)} req/s (${REAL.name}, nginx ${before.real.workerUs.toFixed(1)} µs/req), ${before.trivial.rps.toFixed(0)} req/s (${TRIVIAL.name}, ${before.trivial.workerUs.toFixed(1)} µs/req)`);

    const aport = await freePort();
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `listen: 127.0.0.1:${aport}\ntargets:\n  - name: nginx\n    exe: ${server.exe}\n${MODE ? `    mode: ${MODE}\n` : ''}`);
    // the Node options the shipped systemd unit gives the agent
    const nodeOptions = /^Environment=NODE_OPTIONS=(.*)$/m.exec(readFileSync(join(root, 'deploy/systemd/leakscope-agent.service'), 'utf8'))?.[1] ?? '';
    console.log(`agent: dist/cli/main.js, NODE_OPTIONS=${nodeOptions} (as deploy/systemd/leakscope-agent.service)`);
    const agent = track(spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: nodeOptions } }));
    let err = '';
    const agentStart = Date.now();
    // the governor's log lines, with when they came (s since the agent started)
    const switches: { atS: number; to: string; line: string }[] = [];
    let partial = '';
    agent.stderr.on('data', (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const to = /switching to walk mode/.test(line) ? 'walk' : /trying the probes again/.test(line) ? 'events (try)' : /staying with the probes/.test(line) ? 'events (kept)' : undefined;
        if (to) {
          const atS = Math.round((Date.now() - agentStart) / 1000);
          switches.push({ atS, to, line: line.replace(/^leakscope agent: /, '') });
          console.log(`  [${atS} s] ${line}`);
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      agent.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('serving')) resolve(); });
      agent.once('exit', (c) => reject(new Error(`agent exited (${c}): ${err}`)));
    });
    /** The target's mode now, from the agent's own metric. */
    const modeNow = async (): Promise<string> => {
      const text = await fetch(`http://127.0.0.1:${aport}/metrics`).then((r) => r.text()).catch(() => '');
      return /leakscope_target_mode\{target="nginx",mode="(\w+)"\} 1$/m.exec(text)?.[1] ?? '?';
    };
    const procs = (): number[] => [agent.pid!, ...childrenOf(agent.pid!)];
    const rss = () => procs().map(rssKiB);
    const cpu = () => procs().reduce((s, p) => s + cpuUs(p), 0);
    console.log('\n| minute | mode at its end | RSS MiB: agent / HTTP side / loader (all) | agent CPU % | req/s realistic (ratio) | req/s trivial (ratio) | nginx µs/req realistic | of which BPF (hits/req) | node + loader µs/req | load |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const rows: { mode: string; switched: boolean; rssAgent: number; rssEach: number[]; real: number; trivial: number; realUs: number; trivialUs: number; cpu: number; load: number; split: { realistic: WrkRun; trivial: WrkRun } }[] = [];
    const untracedMean = (w: 'real' | 'trivial', after?: { rps: number }) => (after ? (before[w].rps + after.rps) / 2 : before[w].rps);
    for (let m = 1; m <= MINUTES; m++) {
      const t0 = Date.now();
      const c0 = cpu();
      const switchesBefore = switches.length;
      const real = await wrk(port, REAL, PHASE_S, worker, agent.pid);
      const trivial = await wrk(port, TRIVIAL, PHASE_S, worker, agent.pid);
      const rest = 60_000 - (Date.now() - t0);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      const pct = ((cpu() - c0) / ((Date.now() - t0) * 1000)) * 100;
      const r = rss();
      const mode = await modeNow();
      const switched = switches.length > switchesBefore;
      rows.push({ mode, switched, rssAgent: r.reduce((a, b) => a + b, 0), rssEach: r.slice(0, 3), real: real.rps, trivial: trivial.rps, realUs: real.workerUs, trivialUs: trivial.workerUs, cpu: pct, load: loadavg()[0]!, split: { realistic: real, trivial } });
      console.log(`| ${m} | ${mode}${switched ? ' (switched)' : ''} | ${r.map((k) => (k / 1024).toFixed(1)).join(' / ')} (${(rows[rows.length - 1]!.rssAgent / 1024).toFixed(1)}) | ${pct.toFixed(1)} | ${real.rps.toFixed(0)} (${((real.rps / before.real.rps) * 100).toFixed(1)}% of before) | ${trivial.rps.toFixed(0)} (${((trivial.rps / before.trivial.rps) * 100).toFixed(1)}%) | ${real.workerUs.toFixed(1)} | ${real.bpfUs.toFixed(1)} (${real.hits.toFixed(1)}) | ${real.nodeUs.toFixed(1)} + ${real.loaderUs.toFixed(1)} | ${load()} |`);
    }
    const metrics = await fetch(`http://127.0.0.1:${aport}/metrics`).then((r) => r.text());
    const hits = /leakscope_probe_hits_total\{target="nginx"\} (\d+)/.exec(metrics)?.[1];
    const lost = /leakscope_events_lost_total\{target="nginx"\} (\d+)/.exec(metrics)?.[1];
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    const after = { real: await wrk(port, REAL, PHASE_S, worker), trivial: await wrk(port, TRIVIAL, PHASE_S, worker) };
    console.log(`\nuntraced after: ${after.real.rps.toFixed(0)} req/s (${REAL.name}), ${after.trivial.rps.toFixed(0)} req/s (${TRIVIAL.name}); load ${load()}`);
    const baseReal = untracedMean('real', after.real);
    const baseTrivial = untracedMean('trivial', after.trivial);
    const tracedReal = rows.reduce((s, r) => s + r.real, 0) / rows.length;
    const tracedTrivial = rows.reduce((s, r) => s + r.trivial, 0) / rows.length;
    // growth after the first minute: the last minutes against the first ones after it (means of
    // up to 3 samples each, so one GC's saw-tooth does not decide), and the highest against minute 1
    const after1 = rows.slice(1).map((r) => r.rssAgent);
    const k = Math.max(1, Math.min(3, Math.floor(after1.length / 2)));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = after1.length ? mean(after1.slice(0, k)) : rows[0]!.rssAgent;
    const late = after1.length ? mean(after1.slice(-k)) : rows[0]!.rssAgent;
    const first = rows[0]!.rssAgent;
    const growth = (late - early) / early;
    console.log(`probe hits ${hits ?? '?'}, events lost ${lost ?? '?'}`);
    console.log(`realistic (${REAL.name}): traced ${tracedReal.toFixed(0)} req/s vs untraced ${baseReal.toFixed(0)} (mean of before and after) = ${((tracedReal / baseReal) * 100).toFixed(1)}% (target >= 95%); nginx ${before.real.workerUs.toFixed(1)} µs per request untraced`);
    console.log(`trivial (${TRIVIAL.name}): traced ${tracedTrivial.toFixed(0)} req/s vs untraced ${baseTrivial.toFixed(0)} = ${((tracedTrivial / baseTrivial) * 100).toFixed(1)}%`);
    // the same per mode: minutes that ended in one mode with no switch during them
    const byMode: Record<string, { minutes: number; realistic: number; trivial: number }> = {};
    for (const mode of [...new Set(rows.map((r) => r.mode))]) {
      const ms = rows.filter((r) => r.mode === mode && !r.switched);
      if (!ms.length) continue;
      byMode[mode] = { minutes: ms.length, realistic: mean(ms.map((r) => r.real)) / baseReal, trivial: mean(ms.map((r) => r.trivial)) / baseTrivial };
      console.log(`  minutes wholly in ${mode} mode (${ms.length}): realistic ${(byMode[mode].realistic * 100).toFixed(1)}%, trivial ${(byMode[mode].trivial * 100).toFixed(1)}% of untraced`);
    }
    const finalMode = rows[rows.length - 1]?.mode ?? '?';
    console.log(`target mode: ${switches.length ? switches.map((s) => `${s.to} at ${s.atS} s`).join(', ') : 'no switch'}; ${finalMode} at the end`);
    // the same per process: the agent (node), its HTTP side, the BPF loader
    ['agent (node)', 'HTTP side', 'BPF loader'].forEach((name, i) => {
      const e = mean(rows.slice(1, 1 + k).map((r) => r.rssEach[i] ?? 0));
      const l = mean(rows.slice(-k).map((r) => r.rssEach[i] ?? 0));
      console.log(`  ${name}: ${(e / 1024).toFixed(1)} -> ${(l / 1024).toFixed(1)} MiB (${(((l - e) / e) * 100).toFixed(1)}%)`);
    });
    console.log(`agent RSS (all its processes): ${(first / 1024).toFixed(1)} MiB at minute 1; minutes 2-${1 + k} ${(early / 1024).toFixed(1)} MiB, last ${k} ${(late / 1024).toFixed(1)} MiB: growth ${(growth * 100).toFixed(1)}% (target <= 5%); highest ${(Math.max(...rows.map((r) => r.rssAgent)) / 1024).toFixed(1)} MiB = ${((Math.max(...rows.map((r) => r.rssAgent)) / first - 1) * 100).toFixed(1)}% over minute 1; CPU ${mean(rows.map((r) => r.cpu)).toFixed(1)}% of a core on average`);
    const perProcess = ['node', 'httpSide', 'loader'].map((name, i) => ({
      name,
      earlyMiB: mean(rows.slice(1, 1 + k).map((r) => r.rssEach[i] ?? 0)) / 1024,
      lateMiB: mean(rows.slice(-k).map((r) => r.rssEach[i] ?? 0)) / 1024,
    }));
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    run.finish({
      minutes: MINUTES,
      workloads: { realistic: REAL.name, trivial: TRIVIAL.name },
      perMinute: rows.map((r, i) => ({
        minute: i + 1,
        mode: r.mode,
        switched: r.switched,
        rssMiB: r.rssEach.map((x) => round(x / 1024)),
        rssAllMiB: round(r.rssAgent / 1024),
        cpuPct: round(r.cpu, 2),
        rps: { realistic: Math.round(r.real), trivial: Math.round(r.trivial) },
        workerUs: { realistic: round(r.realUs, 2), trivial: round(r.trivialUs, 2) },
        // the worker's CPU per request split: BPF programs' run time, probe hits; the agent's own
        bpfUs: { realistic: round(r.split.realistic.bpfUs, 2), trivial: round(r.split.trivial.bpfUs, 2) },
        hitsPerRequest: { realistic: round(r.split.realistic.hits, 2), trivial: round(r.split.trivial.hits, 2) },
        agentUs: { realistic: round(r.split.realistic.nodeUs + r.split.realistic.loaderUs, 2), trivial: round(r.split.trivial.nodeUs + r.split.trivial.loaderUs, 2) },
        load: round(r.load, 2),
      })),
      untraced: {
        before: { realistic: Math.round(before.real.rps), trivial: Math.round(before.trivial.rps), realisticUs: round(before.real.workerUs, 2), trivialUs: round(before.trivial.workerUs, 2) },
        after: { realistic: Math.round(after.real.rps), trivial: Math.round(after.trivial.rps), realisticUs: round(after.real.workerUs, 2), trivialUs: round(after.trivial.workerUs, 2) },
      },
      rpsRatio: { realistic: round(tracedReal / baseReal, 4), trivial: round(tracedTrivial / baseTrivial, 4) },
      // the nginx worker's CPU per request, traced (mean over the minutes) against untraced
      // (mean of before and after): less at the mercy of the machine's load than req/s
      workerUsRatio: {
        realistic: round(mean(rows.map((r) => r.realUs)) / ((before.real.workerUs + after.real.workerUs) / 2), 4),
        trivial: round(mean(rows.map((r) => r.trivialUs)) / ((before.trivial.workerUs + after.trivial.workerUs) / 2), 4),
      },
      rss: {
        firstMiB: round(first / 1024),
        earlyMiB: round(early / 1024),
        lateMiB: round(late / 1024),
        highestMiB: round(Math.max(...rows.map((r) => r.rssAgent)) / 1024),
        averagedMinutes: k,
        growth: round(growth, 4),
        perProcess: perProcess.map((p) => ({ name: p.name, earlyMiB: round(p.earlyMiB), lateMiB: round(p.lateMiB), growth: round((p.lateMiB - p.earlyMiB) / p.earlyMiB, 4) })),
      },
      cpuPct: { mean: round(mean(rows.map((r) => r.cpu)), 2), min: round(Math.min(...rows.map((r) => r.cpu)), 2), max: round(Math.max(...rows.map((r) => r.cpu)), 2) },
      probeHits: Number(hits ?? NaN),
      eventsLost: Number(lost ?? NaN),
      nodeOptions,
      mode: MODE ?? 'auto',
      // the governor (auto mode): each switch with its time (s since the agent started) and log line
      modeSwitches: switches.map((x) => ({ atS: x.atS, to: x.to, line: x.line })),
      finalMode,
      rpsRatioByMode: Object.fromEntries(Object.entries(byMode).map(([k, v]) => [k, { minutes: v.minutes, realistic: round(v.realistic, 4), trivial: round(v.trivial, 4) }])),
    });
  } finally {
    restoreStats();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`agent bench: ${(err as Error).message}`);
  process.exitCode = 1;
});
