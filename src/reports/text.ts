// The text report of `leakscope analyze`: per process a header (verdict in words, outstanding,
// anomalies), the top sites, pool classes and live pools. Fits a 100-column terminal.

import type { AnalysisResult, PoolClassReport, PoolReport, ProcessReport, SiteReport, Verdict } from '../analyses/result.js';
import { VERDICT_RANK } from '../analyses/result.js';
import { formatAmount } from '../analyses/growth.js';
import { growingPools } from '../analyses/pools.js';
import { terminalLines } from './terminal.js';

export interface TextOptions {
  width?: number;
  /** Live pools shown per process. */
  maxPools?: number;
  /** Pool classes shown per process. */
  maxClasses?: number;
}

export function renderText(r: AnalysisResult, opts: TextOptions = {}): string {
  const width = opts.width ?? 100;
  const out: string[] = [];
  const seq = r.clock === 'seq';
  out.push(`leakscope: ${r.source}, ${count(r.events)} events${r.lost ? `, ${count(r.lost)} lost or unreadable` : ''}`);
  // Paths are as long as the user's tree; keep their tail (the file name) and say what was cut.
  for (const input of r.inputs.slice(0, 5)) out.push(clipStart(`Input: ${input}`, width, 7));
  if (r.inputs.length > 5) out.push(`(${r.inputs.length - 5} more inputs)`);
  if (seq) out.push('Clock: event sequence — times and ages count events, not seconds.');
  if (r.estimated) out.push('Sampled trace: counts and bytes are unbiased estimates, not exact figures.');
  for (const w of r.warnings.slice(0, 5)) out.push(...wrap(`warning: ${w}`, width, '', '  '));
  if (r.warnings.length > 5) out.push(`(${r.warnings.length - 5} more warnings)`);
  if (r.processes.length === 0) out.push('', 'No process in this input (or none matches --pid).');
  const ordered = [...r.processes].sort((a, b) => rank(a.verdict) - rank(b.verdict) || total(b) - total(a));
  for (const p of ordered) out.push('', ...processText(p, r, width, opts));
  return `${terminalLines(out)}\n`;
}

function rank(v: Verdict): number {
  return VERDICT_RANK[v.verdict];
}

/** The verdict as the header says it. */
function verdictWords(v: Verdict): string {
  return v.verdict === 'unfreed' ? 'NOT FREED AT EXIT' : v.verdict === 'no-calls' ? 'NO CALLS SEEN' : v.verdict.toUpperCase();
}

/** How the process's trace ends, as far as the trace knows: an exit is a fact; without one,
 *  "still running" would be a guess (a log has no exit lines; a launcher leaves silently). */
function lifeWords(p: ProcessReport, r: AnalysisResult): string {
  if (p.replacedByExec) return 'image replaced by exec';
  if (p.exited) return `exited${p.exitCode !== undefined ? ` (code ${p.exitCode})` : ''}`;
  const heir = r.processes.find((c) => c.ppid === p.pid && c.pid !== p.pid && c.startT >= p.startT && c.endT > p.endT);
  return heir ? `no exit in the trace; silent after ${at(p.endT, p, r)} while its child ${heir.pid} carried on` : 'no exit in the trace';
}

function total(p: ProcessReport): number {
  return p.outstanding.heapBytes + p.outstanding.poolBytes;
}

function processText(p: ProcessReport, r: AnalysisResult, width: number, opts: TextOptions): string[] {
  const out: string[] = [];
  const who = p.command || p.exe || '(command unknown)';
  const life = lifeWords(p, r);
  out.push(clip(`=== Process ${p.pid}${p.ppid ? ` (parent ${p.ppid})` : ''}: ${who}`, width));
  out.push(...wrap(`Verdict: ${verdictWords(p.verdict)} — ${life}, ${span(p.endT - p.startT, r)} traced.`, width, '', '  '));
  out.push(...wrap(p.verdict.explanation, width, '  '));
  if (p.hint) out.push(...wrap(`Hint: ${p.hint}`, width, '  ', '    '));
  const o = p.outstanding;
  out.push(`Outstanding: ${formatAmount(o.heapBytes)} heap in ${count(o.heapCount)} allocations, ${formatAmount(o.poolBytes)} in pools (${count(o.poolCount)} allocations)` +
    (o.mmapBytes ? `, ${formatAmount(o.mmapBytes)} mapped` : '') + (p.rssBytes !== undefined ? `; RSS ${formatAmount(p.rssBytes)}` : '') + '.');
  out.push(`Allocated over the trace: ${count(p.allocated.count)} allocations, ${formatAmount(p.allocated.bytes)}; ${count(p.allocated.frees)} released.`);
  out.push(...wrap(anomalies(p), width, "", "  "));
  if (p.markers.length) out.push(clip(`Markers: ${p.markers.slice(0, 6).map((m) => `${m.label} @${at(m.t, p, r)}`).join(', ')}${p.markers.length > 6 ? ', ...' : ''}`, width));

  if (p.sites.length) {
    out.push('', 'Top sites by outstanding memory:');
    out.push(...siteTable(p.sites, p, r, width));
  } else out.push('', 'No outstanding allocations.');

  const classes = p.poolClasses.filter((c) => c.peakBytes > 0 || c.live > 0).slice(0, opts.maxClasses ?? 8);
  if (classes.length) {
    out.push('', 'Pool classes (pools of one tag or creation site, summed):');
    out.push(...classTable(classes, width));
    for (const c of classes.filter((c) => c.verdict.verdict === 'leak' || c.verdict.verdict === 'growing')) {
      out.push(...wrap(`${c.name}: ${c.verdict.explanation}${c.sites.length ? ` Fed by ${c.sites.slice(0, 3).map((s) => `${s.label} (${formatAmount(s.bytes)})`).join(', ')}.` : ''}`, width, '  '));
    }
  }
  const growing = growingPools(p.pools);
  if (growing.length) {
    out.push('', `Live pools still growing: ${growing.length}`);
    for (const x of growing.slice(0, 5)) {
      const born = x.found ? 'alive before the trace, found in the process' : `created at ${x.createSite}`;
      out.push(...wrap(`${x.tag || x.createSite} ${x.pool} (${x.verdict!.verdict}, ${formatAmount(x.bytes)}, ${born}): ${x.verdict!.explanation}`, width, '  ', '    '));
    }
  }
  const live = countPools(p.pools);
  if (live > 0) {
    out.push('', `Live pools (never destroyed): ${live}${live > (opts.maxPools ?? 12) ? `, the ${opts.maxPools ?? 12} largest trees shown` : ''}:`);
    out.push(...poolTree(p.pools, p, r, width, opts.maxPools ?? 12));
  }
  return out;
}

function anomalies(p: ProcessReport): string {
  const a = p.anomalies;
  const parts: string[] = [];
  const n = (v: number, one: string, many: string) => `${count(v)} ${v === 1 ? one : many}`;
  if (a.unknownFree) parts.push(n(a.unknownFree, 'free of an unknown address', 'frees of unknown addresses'));
  if (a.doubleFree) parts.push(n(a.doubleFree, 'double free', 'double frees'));
  if (a.unknownRealloc) parts.push(n(a.unknownRealloc, 'realloc of an unknown address', 'reallocs of unknown addresses'));
  if (a.unknownPool) parts.push(n(a.unknownPool, 'use of an unknown pool', 'uses of unknown pools'));
  if (a.unknownPoolDestroy) parts.push(n(a.unknownPoolDestroy, 'destroy/clear of an unknown pool', 'destroys/clears of unknown pools'));
  if (a.poolOwnParent) parts.push(n(a.poolOwnParent, 'pool created as its own parent', 'pools created as their own parent'));
  if (a.poolParentCycle) parts.push(n(a.poolParentCycle, 'pool created under its own descendant', 'pools created under their own descendants'));
  const inherited = (a.inheritedFree ?? 0) + (a.inheritedPool ?? 0);
  const inh = inherited ? ` (${count(inherited)} releases of memory inherited over fork, expected)` : '';
  return parts.length ? `Anomalies: ${parts.join(', ')}${inh} — usually memory allocated before tracing began.` : `Anomalies: none${inh}.`;
}

function siteTable(sites: SiteReport[], p: ProcessReport, r: AnalysisResult, width: number): string[] {
  const head = `${pad('BYTES', 10)} ${pad('COUNT', 9)} ${pad('SHARE', 6)} ${pad('OLDEST', 13)} ${'VERDICT'.padEnd(8)} SITE`;
  const rows = [head];
  const fixed = head.length - 4;
  for (const s of sites) {
    const age = span(p.endT - s.oldestT, r);
    // The label gives way so that `via` and the pool stay on a narrow line: its path first.
    const suffix = `${s.via ? ` via ${s.via}` : ''}${s.pool ? ` [pool ${s.pool}]` : ''}`;
    const room = width - fixed - 1 - suffix.length;
    const label = shortLabel(s, Math.max(room, 12));
    rows.push(clip(`${pad(formatAmount(s.bytes), 10)} ${pad(count(s.count), 9)} ${pad(pct(s.share), 6)} ${pad(age, 13)} ${(s.verdict?.verdict ?? '-').padEnd(8)} ${label}${suffix}`, width, fixed));
  }
  return rows;
}

/**
 * A site label that fits `room`: as it is; else its function whole with the path shortened to
 * the file's base name and line (`worker_thread (worker.c:19)`), as a user reads it; else the
 * function alone, its end clipped only when even the function does not fit.
 */
export function shortLabel(s: Pick<SiteReport, 'label' | 'stack'>, room: number): string {
  const fits = (t: string) => [...t].length <= room;
  if (fits(s.label)) return s.label;
  const f = s.stack[0];
  if (f && f.fn && s.label.startsWith(f.fn)) {
    const base = f.file ? f.file.slice(f.file.lastIndexOf('/') + 1) : '';
    const short = base ? `${f.fn} (${base}${f.line ? `:${f.line}` : ''})` : f.fn;
    if (fits(short)) return short;
    if (fits(f.fn)) return f.fn;
    return `${[...f.fn].slice(0, room - 1).join('')}…`;
  }
  if (f && !f.fn && f.file && s.label.startsWith(f.file)) {
    const short = `${f.file.slice(f.file.lastIndexOf('/') + 1)}${f.line ? `:${f.line}` : ''}`;
    if (fits(short)) return short;
  }
  return `${[...s.label].slice(0, room - 1).join('')}…`;
}

function classTable(classes: PoolClassReport[], width: number): string[] {
  // pools alive before the trace are a column of their own, shown when there are any
  const before = classes.some((c) => c.found > 0);
  const head = `${pad('NOW', 10)} ${pad('PEAK', 10)} ${pad('LIVE', 6)} ${pad('CREATED', 8)}${before ? ` ${pad('BEFORE', 6)}` : ''} ${'VERDICT'.padEnd(8)} CLASS`;
  const rows = [head];
  for (const c of classes) {
    rows.push(clip(`${pad(formatAmount(c.bytes), 10)} ${pad(formatAmount(c.peakBytes), 10)} ${pad(count(c.live), 6)} ${pad(count(c.created), 8)}${before ? ` ${pad(count(c.found), 6)}` : ''} ${c.verdict.verdict.padEnd(8)} ${c.name} (${c.kind || 'pool'})`, width));
  }
  return rows;
}

function countPools(forest: PoolReport[]): number {
  let n = 0;
  const walk = (x: PoolReport) => {
    n++;
    x.children.forEach(walk);
  };
  forest.forEach(walk);
  return n;
}

function poolTree(forest: PoolReport[], p: ProcessReport, r: AnalysisResult, width: number, max: number): string[] {
  const rows: string[] = [];
  const walk = (x: PoolReport, depth: number) => {
    if (rows.length >= max) return;
    const name = x.tag || (x.found || x.createSite.startsWith('(creation not seen') ? '(pool created before the trace)' : x.createSite);
    const v = x.verdict ? ` ${x.verdict.verdict}` : '';
    const ind = '  '.repeat(depth + 1);
    rows.push(...wrap(`${name} ${x.pool}: ${formatAmount(x.bytes)} own, ${formatAmount(x.treeBytes)} in its tree, ${count(x.allocs)} allocs, ${x.clears} clears, age ${span(x.age, r)}${v}`, width, ind, `${ind}    `));
    for (const c of x.children) walk(c, depth + 1);
  };
  for (const x of forest) walk(x, 0);
  return rows;
}

/** A duration in the trace's clock: '3.2 s', '5 min', or '1,234 events'. */
export function span(d: number, r: { clock: string }): string {
  if (!Number.isFinite(d)) return '-';
  if (r.clock === 'seq') return `${count(d)} events`;
  const s = d / 1e9;
  if (s < 1e-3) return `${Math.round(d / 1e3)} µs`;
  if (s < 1) return `${Math.round(s * 1e3)} ms`;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function at(t: number, p: ProcessReport, r: AnalysisResult): string {
  return r.clock === 'seq' ? `event ${count(t)}` : span(t, r);
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en');
}

function pct(f: number): string {
  return `${(f * 100).toFixed(f >= 0.1 ? 0 : 1)}%`;
}

function pad(s: string, n: number): string {
  return s.padStart(n);
}

function clip(s: string, width: number, _fixed = 0): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** Clip the middle of a line after its first `keep` characters so its end stays visible. */
function clipStart(s: string, width: number, keep: number): string {
  const chars = [...s];
  if (chars.length <= width) return s;
  return `${chars.slice(0, keep).join('')}…${chars.slice(chars.length - (width - keep - 1)).join('')}`;
}

function wrap(text: string, width: number, indent: string, next = indent): string[] {
  // A word wider than a line (a long path) is cut into line-wide pieces rather than overflow.
  const room = Math.max(10, width - next.length);
  const words = text.split(/\s+/).flatMap((w) => {
    const chars = [...w];
    if (chars.length <= room) return [w];
    const parts: string[] = [];
    for (let i = 0; i < chars.length; i += room) parts.push(chars.slice(i, i + room).join(''));
    return parts;
  });
  const lines: string[] = [];
  let line = indent;
  for (const w of words) {
    if (line.length + w.length + 1 > width && line.trim()) {
      lines.push(line.trimEnd());
      line = next;
    }
    line += (line.trim() ? ' ' : '') + w;
  }
  if (line.trim()) lines.push(line.trimEnd());
  return lines;
}
