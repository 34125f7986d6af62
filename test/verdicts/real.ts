// The real captures of the verdict corpus and their labels. Each rule says, in one line, why the
// construction of the workload implies the label; rules are tried in order, the first that
// matches labels the entity. Processes are told apart by their place in the process tree, never
// by pid (a fresh capture has new pids).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import { analyze } from '../../src/analyses/analyze.js';
import { Engine } from '../../src/engine/engine.js';
import { readInputs } from '../../src/sources/open.js';
import type { Event } from '../../src/model/events.js';
import type { AnalysisResult, ProcessReport } from '../../src/analyses/result.js';
import type { Case, Entity, Rule } from './entities.js';
import { CAPTURES, CUT_MARKER } from './make-captures.js';

export const CAPTURE_DIR = fileURLToPath(new URL('./captures/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

type Test = (e: Entity, r: AnalysisResult) => boolean;
const rule = (test: Test, label: Rule['label'], why: string): Rule => ({ test, label, why });
const and = (...fs: Test[]): Test => (e, r) => fs.every((f) => f(e, r));
const not = (f: Test): Test => (e, r) => !f(e, r);
const any: Test = () => true;

/** Bytes the entity still holds at the end of its process. */
function held(e: Entity): number {
  if (e.cls) return e.cls.bytes;
  if (e.pool) return e.pool.bytes;
  if (e.site) return e.site.bytes;
  const o = e.proc.outstanding;
  return o.heapBytes + o.poolBytes + o.mmapBytes;
}
const kind = (k: Entity['kind']): Test => (e) => e.kind === k;
const exited: Test = (e) => e.proc.exited;
const heldAtExit: Test = (e) => e.proc.exited && held(e) > 0;
/** A site whose first frame that matters is this function (compilers add .isra.0, .constprop.0). */
const site = (fn: string | RegExp): Test => (e) => {
  const f = e.site?.stack[0]?.fn ?? '';
  return e.kind === 'site' && (typeof fn === 'string' ? f === fn || f.startsWith(`${fn}.`) : fn.test(f));
};
const cls = (name: string | RegExp): Test => (e) => e.kind === 'class' && (typeof name === 'string' ? e.cls!.name === name : name.test(e.cls!.name));
const pool = (tag: string): Test => (e) => e.kind === 'pool' && e.pool!.tag === tag;
const classOrPool = (name: string): Test => (e, r) => cls(name)(e, r) || pool(name)(e, r);
/** A pool class or pool that the function fed (an attached trace may not see the pool's tag). */
const fedBy = (fn: string): Test => (e) => (e.cls?.sites ?? e.pool?.sites ?? []).some((x) => x.label === fn || x.label.startsWith(`${fn} `) || x.label.startsWith(`${fn}.`));

function children(r: AnalysisResult, p: ProcessReport): ProcessReport[] {
  return r.processes.filter((c) => c.ppid === p.pid && c.pid !== p.pid && c.startT >= p.startT);
}
/** A launcher: it forked a child that was still active after its own last event (daemonizing). */
const launcher: Test = (e, r) => children(r, e.proc).some((c) => c.endT > e.proc.endT);
function load(paths: string[]): () => Promise<AnalysisResult> {
  return () => analyzeFiles(paths);
}

/** Symbol, stack and module definitions hold for the whole trace wherever they were written. */
const DEFINITIONS = new Set<Event['kind']>(['frame', 'stack', 'module']);

/**
 * The trace as it was when the server was asked for a snapshot (`leakscope snapshot`, its marker
 * "snapshot #1", or a `leakscope mark` "corpus: cut"), the server still running: everything up to
 * that marker, and every symbol definition (symbolization appends them at the end).
 */
/** Where a live case was cut and when each process exited, on the trace's clock: what a run
 *  whose verdicts differ is shown with (repeat.ts). */
export async function cutFacts(path: string): Promise<string> {
  const marks: string[] = [];
  const exits: string[] = [];
  let last = 0;
  await readInputs([path], { event: (e) => {
    if (e.kind === 'marker') marks.push(`${e.label}@${e.t}`);
    else if (e.kind === 'exit') exits.push(`${e.pid}@${e.t}`);
    else if (!DEFINITIONS.has(e.kind)) last = Math.max(last, e.t);
  } });
  return `markers ${marks.join(', ') || 'none'}; exits ${exits.join(', ') || 'none'}; last event @${last}`;
}

function loadCut(path: string): () => Promise<AnalysisResult> {
  return async () => {
    let cut = Infinity;
    await readInputs([path], { event: (e) => { if (e.kind === 'marker' && (/^snapshot #/.test(e.label) || e.label === CUT_MARKER)) cut = Math.min(cut, e.t); } });
    if (cut === Infinity) throw new Error(`${path}: no snapshot marker`);
    const engine = new Engine();
    let begun = false;
    await readInputs([path], { event: (e) => { if (e.t <= cut || DEFINITIONS.has(e.kind)) engine.event(e); } }, {
      onMeta: (meta) => { engine.begin(meta); begun = true; },
    });
    if (!begun) throw new Error(`${path}: no metadata`);
    return analyze(engine.finish(), { source: 'lstrace', inputs: [path] });
  };
}

/** What a capture is (make-captures.ts says it), and how the case reads it. */
function captureWhat(name: string, live = false): string {
  const w = CAPTURES.find((c) => c.name === name)!.what;
  return live ? `${w}; cut at the marker written before it was stopped: the server still running` : `${w}; to its end`;
}

/** A capture file: the committed one (.zst) or, with `dir`, a fresh one. */
function capture(dir: string | undefined, file: string): string {
  if (dir) return join(dir, file);
  return join(CAPTURE_DIR, `${file}.zst`);
}

// --- vd-server under run ------------------------------------------------------------------------

/** The rules every vd-server capture shares, after its own. */
const SERVER_COMMON: Rule[] = [
  rule(and(site('vd_leak'), exited), 'unfreed', 'vd_leak keeps 48 B per /leak request: held when the server exited'),
  rule(site('vd_leak'), 'leak', 'vd_leak keeps 48 B per /leak request and drops the pointer'),
  rule(and(kind('site'), heldAtExit), 'unfreed', 'held when the server exited: libc, the loader, or state it keeps (-k)'),
  rule(site('main'), 'steady', 'the 32 KiB configuration made at start-up, kept for the life of the server'),
  rule(kind('site'), 'steady', 'libc and loader start-up allocations, made once'),
];

function serverCase(dir: string | undefined, name: string, live: boolean, _shape: string, own: Rule[]): Case {
  const path = capture(dir, `${name}.lstrace`);
  return {
    name: `${name}${live ? '-live' : ''}`,
    source: live ? 'vd-server run (cut at a snapshot while running)' : 'vd-server run',
    what: captureWhat(name, live),
    load: live ? loadCut(path) : load([path]),
    rules: [...own, ...SERVER_COMMON],
  };
}

function serverCases(dir?: string): Case[] {
  const out: Case[] = [{
    name: 'short-program', source: 'C program run', what: captureWhat('short-program'), load: load([capture(dir, 'short-program.lstrace')]),
    rules: [
      rule(site('keep'), 'unfreed', '1,000 blocks of 64 B kept in a loop and never freed: the program exits holding them'),
      rule(heldAtExit, 'unfreed', 'held when the program exited (its blocks, libc)'),
      rule(any, 'steady', 'nothing held at exit'),
    ],
  }];
  for (const live of [false, true]) {
    out.push(serverCase(dir, 'srv-slow-leak', live, 'slow leak under churn', [
      rule(and(kind('process'), exited), 'unfreed', 'exits holding what it leaked: not freed at exit (while it ran, a leak)'),
      rule(kind('process'), 'leak', 'keeps 48 B per request, under 40 allocations of up to 8 KiB churned per request'),
    ]));
    out.push(serverCase(dir, 'srv-late-leak', live, 'leak from half-way', [
      rule(and(kind('process'), exited), 'unfreed', 'exits holding what it leaked: not freed at exit (while it ran, a leak)'),
      rule(kind('process'), 'leak', 'churn only for 250 requests, then 48 B kept per request for 250 more'),
    ]));
    out.push(serverCase(dir, 'srv-sawtooth', live, 'sawtooth', [
      rule(kind('process'), 'bounded', 'a batch of 1 KiB entries freed whole every 120 requests: four teeth'),
      rule(and(site('vd_batch_add'), (e) => e.site!.stack[0]!.line !== 0 && e.site!.bytes % 1024 === 0 && e.site!.count > 1), 'bounded', 'the batch entries: up to 120 KiB, freed whole every 120 requests'),
      rule(and(site('vd_batch_add'), not(exited)), 'steady', 'the batch pointer array, made by the first request and kept'),
    ]));
    out.push(serverCase(dir, 'srv-step', live, 'step', [
      rule(kind('process'), 'growing', 'a 256 KiB table made once, half-way, and kept: one step is too little evidence for a leak, too much for steady'),
      rule(and(site('vd_step_table'), not(exited)), 'growing', 'the 256 KiB table made once half-way and kept'),
    ]));
    out.push(serverCase(dir, 'srv-lru', live, 'LRU at capacity', [
      rule(and(kind('process'), exited), 'unfreed', 'exits (-k) holding the 144 cache entries: not freed at exit; while it ran the cache filled, then stayed at capacity'),
      rule(kind('process'), 'bounded', 'an LRU of 144 entries of 2 KiB: full after ~155 of 600 requests, then one eviction per insertion'),
      rule(and(site('vd_lru_insert'), not(exited)), 'bounded', 'the LRU entries: full after ~155 of 600 requests, then one eviction per insertion'),
    ]));
    out.push(serverCase(dir, 'srv-daemon', live, 'daemonizing', [
      rule(and(kind('process'), launcher), 'unfreed', 'the launcher: makes its configuration, forks the daemon and exits without freeing it'),
      rule(and(kind('process'), exited), 'unfreed', 'the daemon exits holding what it leaked (48 B in one request of three)'),
      rule(kind('process'), 'leak', 'the daemon keeps 48 B in one request of three'),
    ]));
  }
  return out;
}

// --- apache2 with mod_vd --------------------------------------------------------------------------

/** httpd's processes by what they do, whatever the trace caught of them: the child serves (it has
 *  a pchild pool, or request pools), the parent forks children, the start-up process forks the
 *  parent. */
const isChild = (p: ProcessReport): boolean => p.poolClasses.some((c) => c.name === 'pchild' || c.name === 'request');
const isParent = (r: AnalysisResult, p: ProcessReport): boolean => !isChild(p) && children(r, p).some(isChild);
/** (An attached trace may miss the fork that made the parent: what is neither is the start-up process.) */
const isStartup = (r: AnalysisResult, p: ProcessReport): boolean => !isChild(p) && !isParent(r, p);
const child: Test = (e) => isChild(e.proc);
const parent: Test = (e, r) => isParent(r, e.proc);
const startup: Test = (e, r) => isStartup(r, e.proc);

/** Entities of httpd's start-up process and of the parent: the configuration, made at start-up. */
const APACHE_COMMON: Rule[] = [
  rule(and(kind('process'), startup), 'unfreed', "httpd's start-up process: parses the configuration, forks the parent and exits without destroying its pools"),
  rule(and(kind('process'), parent, exited), 'unfreed', 'the parent: exits holding its configuration (a pool it never destroys)'),
  rule(and(kind('process'), parent), 'steady', 'the parent: its configuration at start-up, then it only watches the child'),
  rule(and(startup, heldAtExit), 'unfreed', 'made by the start-up process while it parsed the configuration, held when it exited'),
  rule(startup, 'steady', "made and released while httpd's start-up process parsed the configuration"),
  rule(and(parent, heldAtExit), 'unfreed', 'the configuration, held when the parent exited'),
  rule(parent, 'steady', "the parent's configuration, made at start-up"),
  rule(classOrPool('request'), 'steady', 'request pools: one per request, destroyed at its end'),
  rule(and(child, heldAtExit), 'unfreed', 'held when the child exited: libc and the loader'),
  rule(site(/^(vd_startup_entry|ap_|apr_|_dl|__|tz)/), 'steady', 'start-up memory the child inherited or made once'),
];

function apacheCases(dir?: string): Case[] {
  const leak: Rule[] = [
    rule(and(kind('process'), child), 'leak', 'the child: /vd/leak puts 2 KiB into pchild every other request'),
    rule(classOrPool('pchild'), 'leak', 'pchild: 2 KiB per /vd/leak request, never released until the child exits'),
    rule(fedBy('vd_leak'), 'leak', 'the pool vd_leak feeds (pchild, its tag unseen by an attach that began after its creation): 2 KiB per /vd/leak request'),
    rule(site('vd_leak'), 'leak', 'vd_leak: 2 KiB per /vd/leak request into pchild'),
    rule(classOrPool('transaction'), 'steady', 'the connection pool, cleared after each one-request connection'),
    rule(classOrPool('vd-cache'), 'steady', 'the cache pool: made at child start, never used here'),
  ];
  const mixed: Rule[] = [
    rule(and(kind('process'), child, exited), 'unfreed', 'the child: exits holding what libc and the loader made (its pools are destroyed)'),
    rule(and(kind('process'), child), 'bounded', 'the child: its cache fills early and holds; one long stream grows the connection pool, released at close'),
    rule(classOrPool('transaction'), 'bounded', 'the connection pool grows during the 300-chunk stream and is cleared when the connection ends'),
    rule(site('vd_stream_chunk'), 'bounded', 'the stream chunks, released when the connection ends'),
    rule(and(child, (e) => !!e.pool && !e.pool.tag && Math.max(...(e.pool.series?.hi ?? [0])) >= 100 * 1024), 'bounded', "the child's only untagged pool that can reach 100 KiB: the connection pool during the 300-chunk stream (150 KiB of chunks), its tag unseen by an attach that began after its creation; cleared when the connection ends"),
    rule(fedBy('vd_stream_chunk'), 'bounded', 'the pool vd_stream_chunk feeds (the connection pool, its tag unseen by an attach that began after its creation): grows during the stream, cleared when the connection ends'),
    rule(classOrPool('vd-cache'), 'bounded', 'the cache: fills with 24 entries in its first 24 requests (a fifth of the traffic), then only hits'),
    rule(fedBy('vd_cache_get'), 'bounded', 'the pool vd_cache_get feeds (the cache pool, its tag unseen by an attach that began after its creation)'),
    rule(and(site('vd_cache_get'), (e) => e.site!.bytes < 1024), 'steady', 'the cache keys: 24 short strings, less than the 1 KiB of growth that is meaningful'),
    rule(site('vd_cache_get'), 'bounded', 'the cache entries: 24, made in the first 24 cache requests'),
    rule(classOrPool('pchild'), 'steady', 'pchild: the cache pool is its child, nothing else'),
  ];
  // Warmed up before the attach: pchild, the cache pool and the connection pool were made (and
  // pchild leaked, the cache filled) before the trace began: the walk finds them alive.
  const warm: Rule[] = [
    rule(and(kind('process'), child), 'leak', 'the child: its pchild, alive before the attach, goes on growing by 2 KiB a /vd/leak request'),
    rule(classOrPool('pchild'), 'leak', "pchild, found alive at attach holding the warm-up's 120 leaks: 2 KiB more per /vd/leak request while traced"),
    rule(fedBy('vd_leak'), 'leak', 'the pool vd_leak feeds (pchild, found alive at attach): 2 KiB per /vd/leak request'),
    rule(site('vd_leak'), 'leak', 'vd_leak: 2 KiB per /vd/leak request into pchild'),
    rule(classOrPool('transaction'), 'bounded', 'the connection pool, found alive at attach: grows during the 300-chunk stream and is cleared when the connection ends'),
    rule(fedBy('vd_stream_chunk'), 'bounded', 'the pool vd_stream_chunk feeds (the connection pool): grows during the stream, cleared when the connection ends'),
    rule(site('vd_stream_chunk'), 'bounded', 'the stream chunks, released when the connection ends'),
    rule(classOrPool('vd-cache'), 'steady', 'the cache pool, filled with its 24 entries during the warm-up before the attach: while traced, only hits'),
    rule(site('vd_cache_get'), 'steady', 'the cache: no new entry while traced (only hits)'),
  ];
  const cases: Case[] = [
    { name: 'apache-run-leak', source: 'apache2 run', what: captureWhat('apache-run-leak'), load: load([capture(dir, 'apache-run-leak.lstrace')]), rules: [...APACHE_COMMON.slice(0, 5), ...leak, ...APACHE_COMMON.slice(5), rule(any, 'steady', 'the child: the rest of its pools, made at its start')] },
    { name: 'apache-run-mixed', source: 'apache2 run', what: captureWhat('apache-run-mixed'), load: load([capture(dir, 'apache-run-mixed.lstrace')]), rules: [...APACHE_COMMON.slice(0, 5), ...mixed, ...APACHE_COMMON.slice(5), rule(any, 'steady', 'the child: the rest of its pools, made at its start')] },
  ];
  for (const c of [['apache-attach-leak', leak], ['apache-attach-mixed', mixed], ['apache-attach-warm', warm]] as const) {
    const path = capture(dir, `${c[0]}.lstrace`);
    if (!existsSync(path)) continue; // attach needs root and eBPF: made where they exist
    cases.push({ name: c[0], source: 'apache2 attach', what: CAPTURES.find((x) => x.name === c[0])!.what, load: load([path]), rules: [...APACHE_COMMON.slice(0, 5), ...c[1], ...APACHE_COMMON.slice(5), rule(any, 'steady', 'the child: the rest of its pools, made at its start')] });
  }
  return cases;
}

// --- nginx with Lua ----------------------------------------------------------------------------

const leaf = (r: AnalysisResult, p: ProcessReport): boolean => children(r, p).length === 0;
/** nginx's worker: named so in a debug log; under `run`, the process at the bottom of the tree
 *  that allocated (the launcher forks the master, the master the worker). */
const worker: Test = (e, r) => /worker process/.test(e.proc.command) || (leaf(r, e.proc) && children(r, e.proc).length === 0 && r.processes.some((p) => p.pid === e.proc.ppid && !leaf(r, p)) && r.processes.some((p) => children(r, p).some((c) => c.pid === e.proc.ppid)));
/** nginx's master under `run`: the parent of the worker. */
const master: Test = (e, r) => children(r, e.proc).some((c) => worker({ ...e, proc: c }, r));
const viaMmapIn = (module: RegExp): Test => (e) => e.kind === 'site' && e.site!.via === 'mmap' && module.test(e.site!.label);

function nginxCases(dir?: string): Case[] {
  const run = capture(dir, 'nginx-lua-run.lstrace');
  return [
    {
      name: 'nginx-lua-debug', source: 'nginx debug log', what: captureWhat('nginx-lua-debug'), load: load([capture(dir, 'nginx-lua-debug.log')]),
      rules: [
        rule(and(kind('process'), worker), 'leak', "the worker: the last 60 requests each compile a new regex its cache keeps (the Lua-table leak is in LuaJIT's own heap, which a debug log does not show)"),
        rule(worker, 'steady', "the worker's start-up memory and per-request allocations, released with their requests"),
        rule(and(kind('process'), (e) => !/master process/.test(e.proc.command)), 'no-calls', 'the start-up process: it parsed the configuration before the debug log was open, so the log holds no allocation line of it'),
        rule(any, 'steady', 'the master: its configuration came from the start-up process; it frees a block at exit'),
      ],
    },
    {
      name: 'nginx-lua-run', source: 'nginx run', what: captureWhat('nginx-lua-run'), load: load([run]),
      rules: [
        rule(heldAtExit, 'unfreed', 'held when the process exited: its configuration, LuaJIT, OpenSSL and the loader (the worker closes its Lua state, so the Lua leak is released at exit)'),
        rule(any, 'steady', 'released by exit: the master (the launcher made what it holds)'),
      ],
    },
    {
      name: 'nginx-lua-run-live', source: 'nginx run (cut at a marker while running)', what: captureWhat('nginx-lua-run', true), load: loadCut(run),
      rules: [
        rule(and(kind('process'), worker), 'leak', "the worker: keeps 16 KiB a /leak request in a Lua table, LuaJIT's heap growing by mapped chunks"),
        rule(and(worker, viaMmapIn(/luajit/), (e) => e.site!.bytes === Math.max(...e.proc.sites.filter((s) => s.via === 'mmap' && /luajit/.test(s.label)).map((s) => s.bytes))), 'leak', "LuaJIT's heap chunks (mmap, its largest mapping site) in the worker: the Lua table of 16 KiB strings keeps growing"),
        rule(and(worker, viaMmapIn(/luajit/)), 'steady', "LuaJIT's other mappings in the worker (its machine-code area for compiled traces), made once"),
        rule(and(worker, site('ngx_http_lua_ffi_compile_regex')), 'leak', "the last 60 requests each compile a new regex with \"o\": the worker's cache keeps every one (its limit, 1,024, is far away), so within this trace it grows like a leak"),
        rule(heldAtExit, 'unfreed', 'the start-up process exited (before the cut) holding its configuration, LuaJIT and OpenSSL'),
        rule(and(kind('process'), master), 'no-calls', 'the master: its configuration was made by the start-up process before the fork; it allocates nothing until told to quit (after the cut)'),
        rule(any, 'steady', "start-up memory of the master and the worker (configuration, connections), made once"),
      ],
    },
  ];
}

// --- the shared fixtures (test/fixtures, /work/shared/fixtures/README.md) -----------------------------

function fixtureCases(): Case[] {
  return [
    {
      name: 'fixture-apr-httpd', source: 'fixture (APR pool-debug log)', what: 'test/fixtures/apr-pool-debug.httpd-1child.log.gz: httpd 2.4.62 prefork, one child, 40 × (/ok, /leak: 2 KiB into pchild), one /stream?40, 20 × /ok, a graceful stop', load: load([join(FIXTURES, 'apr-pool-debug.httpd-1child.log.gz')]),
      rules: [
        rule((e) => e.proc.pid === 3153, 'steady', "httpd's start-up process (3153): parses the configuration, forks the parent, never heard from again"),
        rule((e) => e.proc.pid === 3156, 'steady', 'the parent (3156): its configuration, then it watches the child'),
        rule(and(kind('process'), (e) => e.proc.pid === 3160), 'leak', 'the child (3160): /leak puts 2 KiB a request into pchild'),
        rule(classOrPool('pchild'), 'leak', 'pchild: 2 KiB and a string per /leak request, never cleared'),
        rule(classOrPool('transaction'), 'bounded', 'the connection pool grows during /stream?40 and is cleared when the connection ends'),
        rule(any, 'steady', 'request pools and start-up pools of the child'),
      ],
    },
    {
      name: 'fixture-nginx', source: 'fixture (nginx debug log)', what: 'test/fixtures/nginx-debug.1worker.log.gz: nginx 1.31.4 --with-debug, one worker, 30 × (/ok, /scratch?forget: a 4 KiB pool never destroyed), 30 × /scratch, nginx -s quit', load: load([join(FIXTURES, 'nginx-debug.1worker.log.gz')]),
      rules: [
        rule((e) => e.kind === 'process' && e.proc.pid === 3640, 'no-calls', 'the start-up process (3640): it parsed the configuration before the debug log was open, so the log holds no allocation line of it'),
        rule((e) => e.kind === 'process' && e.proc.pid === 3737, 'no-calls', 'the `nginx -s quit` signal process (3737): it only sends a signal, with no allocation line'),
        rule((e) => e.kind === 'site' && e.site!.label === 'GET /scratch', 'leak', '/scratch?forget=i leaks a 4 KiB pool per request for the first half'),
        rule((e) => e.kind === 'process' && e.proc.sites.some((s) => s.label === 'GET /scratch'), 'leak', 'the worker: 30 leaked 4 KiB pools'),
        rule(any, 'steady', 'the master and the worker outside /scratch: start-up memory and per-connection churn'),
      ],
    },
  ];
}

/** Every real case: the fixtures and the captures (committed ones, or those in `dir`). */
export function realCases(dir?: string): Case[] {
  return [...fixtureCases(), ...serverCases(dir), ...apacheCases(dir), ...nginxCases(dir)];
}

