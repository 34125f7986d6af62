// The report page. Reads the embedded JSON (src/reports/html/data.ts) and draws: a summary per
// process, memory-over-time charts (uPlot) with markers and a draggable time range, a flame graph
// (d3-flame-graph) of outstanding memory that follows the range, a sortable site table, pool
// classes and the pool tree. Every string from the trace goes through textContent, never HTML.

import { formatBytes } from '../src/model/units.js';
import uPlot from 'uplot';
import { select } from 'd3-selection';
import flamegraph from 'd3-flame-graph';
import type { FlameGraph } from 'd3-flame-graph';
import type { ReportData, ProcessData, SiteRow, PoolNode } from '../src/reports/html/data.js';

type Metric = 'bytes' | 'count' | 'allocated';
interface Range {
  t0: number;
  t1: number;
  label: string;
}
interface FlameNode {
  name: string;
  value: number;
  children: FlameNode[];
}

const data: ReportData = JSON.parse(document.getElementById('leakscope-data')!.textContent!);
const state: { pid: number; range: Range | null; metric: Metric; sort: { key: string; desc: boolean }; search: string } = {
  pid: pickProcess(),
  range: null,
  metric: 'bytes',
  sort: { key: 'bytes', desc: true },
  search: '',
};
const charts = new Map<string, uPlot>();
let flameChart: FlameGraph | null = null;
let lastTableRows: { label: string; bytes: number; count: number; age?: number }[] = [];
const PALETTE = ['#c0392b', '#2c7fb8', '#31a354', '#7f7f7f', '#e6550d', '#756bb1', '#d6616b', '#3182bd', '#8c6d31', '#17becf'];
const GROUP_COLOR: Record<string, string> = { total: '#c0392b', heap: '#2c7fb8', pools: '#31a354', rss: '#7f7f7f' };

// ---------------------------------------------------------------------------------------------
// helpers

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...kids: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(typeof k === 'string' ? document.createTextNode(k) : k);
  return e;
}

function fmtBytes(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : formatBytes(n);
}

function fmtCount(n: number): string {
  return Math.round(n).toLocaleString('en');
}

/** The chart's x unit: seconds for 'ns' clocks, events for 'seq'. */
function toX(t: number): number {
  return data.clock === 'ns' ? t / 1e9 : t;
}
function fromX(x: number): number {
  return data.clock === 'ns' ? x * 1e9 : x;
}
function fmtX(x: number): string {
  if (data.clock !== 'ns') return `event ${fmtCount(x)}`;
  if (Math.abs(x) < 1) return `${(x * 1000).toFixed(1)} ms`;
  if (Math.abs(x) < 120) return `${x.toFixed(2)} s`;
  return `${(x / 60).toFixed(1)} min`;
}
function fmtT(t: number): string {
  return fmtX(toX(t));
}
function fmtAge(dt: number): string {
  if (data.clock !== 'ns') return `${fmtCount(dt)} events`;
  return fmtX(dt / 1e9);
}

function verdictBadge(v: string | undefined): HTMLElement {
  return el('span', { class: `badge v-${v ?? 'none'}`, ...(v === 'unfreed' ? { title: 'not freed at exit' } : {}) }, v === 'no-calls' ? 'no calls seen' : v ?? '–');
}

function proc(): ProcessData {
  return data.processes.find((p) => p.pid === state.pid) ?? data.processes[0]!;
}

function pickProcess(): number {
  const rank: Record<string, number> = { leak: 4, growing: 3, unfreed: 2, bounded: 1, steady: 0, 'no-calls': -1 };
  // The worst verdict first; among equals the surest trend, then the most outstanding.
  const ps = [...data.processes].sort(
    (a, b) => (rank[b.verdict.verdict] ?? 0) - (rank[a.verdict.verdict] ?? 0) || a.verdict.pValue - b.verdict.pValue ||
      b.outstanding.heapBytes + b.outstanding.poolBytes - (a.outstanding.heapBytes + a.outstanding.poolBytes),
  );
  return ps[0]?.pid ?? 0;
}

function confidence(p: ProcessData): string {
  const v = p.verdict;
  // nothing was called: no trend to speak of, but what to try
  if (v.verdict === 'no-calls') return `${v.explanation}${p.hint ? ` ${p.hint}` : ''}`;
  const sure = v.pValue < 0.001 ? 'very likely' : v.pValue < 0.01 ? 'likely' : v.pValue < 0.05 ? 'probably' : 'not significant';
  const rate = data.clock === 'ns' ? `${fmtBytes(v.slope * 1e9)}/s` : `${fmtBytes(v.slope)}/event`;
  return `${v.explanation} Trend ${sure}: Mann–Kendall p = ${v.pValue.toPrecision(2)}, τ = ${v.tau.toFixed(2)} over ${v.n} points, slope ${rate}.`;
}

// ---------------------------------------------------------------------------------------------
// layout

const app = document.getElementById('app')!;

function header(): HTMLElement {
  const h = el('header', {},
    el('h1', {}, 'leakscope report'),
    el('div', { class: 'inputs' }, data.inputs.join(', ')),
    el('div', { class: 'meta' },
      `source ${data.source} · ${fmtCount(data.events)} events · clock: ${data.clockUnit}` +
        (data.startWallMs ? ` · started ${new Date(data.startWallMs).toISOString()}` : '') +
        ` · generated ${data.generated}`),
  );
  if (data.estimated) h.append(el('div', { class: 'note' }, 'Allocations were sampled: counts and bytes are estimates.'));
  if (data.lost > 0) h.append(el('div', { class: 'warn' }, `${fmtCount(data.lost)} events were lost while tracing: totals may be low.`));
  for (const w of data.warnings.slice(0, 5)) h.append(el('div', { class: 'warn' }, w));
  return h;
}

function summary(): HTMLElement {
  const t = el('table', { class: 'summary', id: 'summary' });
  t.append(el('thead', {}, el('tr', {}, ...['process', 'verdict', 'outstanding', 'top leaking site or pool', 'how sure'].map((c) => el('th', {}, c)))));
  const body = el('tbody');
  for (const p of data.processes) {
    const out = p.outstanding.heapBytes + p.outstanding.poolBytes;
    const tr = el('tr', { class: p.pid === state.pid ? 'sel' : '', 'data-pid': String(p.pid) },
      el('td', {}, el('b', {}, `pid ${p.pid}`), p.exited ? el('span', { class: 'sub' }, ' exited') : null, el('div', { class: 'cmd' }, p.command || '(unknown command)')),
      el('td', {}, verdictBadge(p.verdict.verdict)),
      el('td', { class: 'num' }, fmtBytes(out), el('div', { class: 'sub' }, `${fmtCount(p.outstanding.heapCount + p.outstanding.poolCount)} blocks · peak ${fmtBytes(p.verdict.peak)}` + (p.rssBytes ? ` · RSS ${fmtBytes(p.rssBytes)}` : ''))),
      el('td', {}, p.top ? el('span', {}, `${p.top.what} `, el('code', {}, p.top.label), ` — ${fmtBytes(p.top.bytes)}` + (p.top.peak && p.top.peak > p.top.bytes ? ` (peak ${fmtBytes(p.top.peak)})` : '')) : '–'),
      el('td', { class: 'why' }, confidence(p)),
    );
    tr.addEventListener('click', () => selectProcess(p.pid));
    body.append(tr);
  }
  t.append(body);
  return el('section', {}, el('h2', {}, 'Summary'), t);
}

function selectProcess(pid: number): void {
  state.pid = pid;
  state.range = null;
  render();
}

// ---------------------------------------------------------------------------------------------
// charts

function markerPlugin(markers: { t: number; label: string }[]): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const ctx = u.ctx;
          const { top, height, left, width } = u.bbox;
          ctx.save();
          ctx.font = `${Math.round(11 * devicePixelRatio)}px sans-serif`;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.strokeStyle = '#8e44ad';
          ctx.fillStyle = '#8e44ad';
          ctx.lineWidth = devicePixelRatio;
          for (const m of markers) {
            const x = Math.round(u.valToPos(toX(m.t), 'x', true));
            if (x < left || x > left + width) continue;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.fillText(m.label.slice(0, 40), x + 3 * devicePixelRatio, top + 12 * devicePixelRatio);
          }
          ctx.restore();
        },
      ],
    },
  };
}

function axisX(): uPlot.Axis {
  return { values: (_u, vals) => vals.map((v) => (data.clock === 'ns' ? fmtX(v) : fmtCount(v))), label: data.clock === 'ns' ? 'time since start' : 'events', labelSize: 20, space: 90 };
}
function axisY(): uPlot.Axis {
  return { values: (_u, vals) => vals.map((v) => fmtBytes(v)), size: 72 };
}

function mainChart(p: ProcessData, host: HTMLElement): void {
  if (p.omitted) {
    host.append(el('p', { class: 'empty' }, `This report holds ${data.limits.processes} of ${data.processes.length} processes in full (the worst verdicts and the most outstanding memory first); this one has its summary row only. Report it alone with --pid ${p.pid}.`));
    return;
  }
  if (p.x.length === 0) {
    host.append(el('p', { class: 'empty' }, 'This process has no memory series.'));
    return;
  }
  const xs = p.x.map(toX);
  let k = 0;
  const series: uPlot.Series[] = [{ label: data.clock === 'ns' ? 'time' : 'event', value: (_u, v) => (v === null ? '–' : fmtX(v)) }];
  for (const l of p.lines) {
    const color = GROUP_COLOR[l.group] ?? PALETTE[4 + (k++ % 6)]!;
    series.push({
      label: l.name.length > 60 ? `${l.name.slice(0, 57)}…` : l.name,
      stroke: color,
      width: l.group === 'total' ? 2 : 1.25,
      dash: l.group === 'rss' ? [6, 4] : l.group === 'site' ? [2, 2] : undefined,
      fill: l.group === 'total' ? 'rgba(192,57,43,0.08)' : undefined,
      value: (_u, v) => fmtBytes(v),
      spanGaps: false,
      // RSS counts the whole process: on its own axis so the heap and pool lines stay readable.
      scale: l.group === 'rss' ? 'rss' : 'y',
    });
  }
  const width = Math.max(480, Math.min(1200, host.clientWidth || 1100));
  const u = new uPlot(
    {
      width,
      height: 300,
      series,
      scales: { x: { time: false } },
      axes: p.lines.some((l) => l.group === 'rss')
        ? [axisX(), axisY(), { ...axisY(), scale: 'rss', side: 1, grid: { show: false }, stroke: '#7f7f7f', label: 'RSS (dashed)', labelSize: 18 }]
        : [axisX(), axisY()],
      legend: { live: true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      plugins: [markerPlugin(p.markers)],
      hooks: {
        setSelect: [
          (u: uPlot) => {
            if (u.select.width < 2) return;
            const x0 = u.posToVal(u.select.left, 'x');
            const x1 = u.posToVal(u.select.left + u.select.width, 'x');
            setRange({ t0: fromX(x0), t1: fromX(x1), label: `${fmtX(x0)} – ${fmtX(x1)}` }, false);
          },
        ],
      },
    },
    [xs, ...p.lines.map((l) => l.y)] as uPlot.AlignedData,
    host,
  );
  charts.set('main', u);
}

/** Small multiples: one chart per process, one shared y scale so sizes compare at a glance. */
const MAX_MULTIPLES = 48;

/** The processes drawn as small multiples: the selected one, then the worst and biggest. */
function multiplesShown(): ProcessData[] {
  const rank: Record<string, number> = { leak: 4, growing: 3, unfreed: 2, bounded: 1, steady: 0, 'no-calls': -1 };
  const ps = [...data.processes].sort((a, b) => Number(b.pid === state.pid) - Number(a.pid === state.pid) ||
    (rank[b.verdict.verdict] ?? 0) - (rank[a.verdict.verdict] ?? 0) || b.verdict.peak - a.verdict.peak);
  return ps.slice(0, MAX_MULTIPLES).sort((a, b) => data.processes.indexOf(a) - data.processes.indexOf(b));
}

function smallMultiples(host: HTMLElement): void {
  let max = 0;
  const shown = multiplesShown();
  for (const p of shown) for (const l of p.lines) if (l.group === 'total' || l.group === 'rss') for (const y of l.y) if (y !== null && y > max) max = y;
  for (const p of shown) {
    const cell = el('div', { class: `multiple${p.pid === state.pid ? ' sel' : ''}`, 'data-pid': String(p.pid) },
      el('div', { class: 'mtitle' }, `pid ${p.pid} `, verdictBadge(p.verdict.verdict), ` ${fmtBytes(p.outstanding.heapBytes + p.outstanding.poolBytes)}`));
    host.append(cell);
    cell.addEventListener('click', () => selectProcess(p.pid));
    const lines = p.lines.filter((l) => l.group === 'total' || l.group === 'rss');
    if (p.x.length === 0 || lines.length === 0) {
      cell.append(el('p', { class: 'empty' }, 'no series'));
      continue;
    }
    const u = new uPlot(
      {
        width: 300,
        height: 130,
        series: [{}, ...lines.map((l) => ({ label: l.name, stroke: GROUP_COLOR[l.group] ?? '#333', width: 1.25, dash: l.group === 'rss' ? [6, 4] : undefined }))],
        scales: { x: { time: false }, y: { range: [0, max || 1] } },
        axes: [{ ...axisX(), label: undefined, size: 24 }, { ...axisY(), size: 72 }],
        legend: { show: false },
        cursor: { show: false },
        plugins: [markerPlugin(p.markers)],
      },
      [p.x.map(toX), ...lines.map((l) => l.y)] as uPlot.AlignedData,
      cell,
    );
    charts.set(`pid:${p.pid}`, u);
  }
}

// ---------------------------------------------------------------------------------------------
// time range

function rangeControls(p: ProcessData): HTMLElement {
  const points: { label: string; t: number }[] = [{ label: 'start', t: p.startT }, ...p.markers.map((m) => ({ label: `marker: ${m.label}`, t: m.t })), { label: 'end', t: p.endT }];
  const mk = (id: string, dflt: number) => {
    const s = el('select', { id });
    points.forEach((pt, i) => {
      const o = el('option', { value: String(i) }, `${pt.label} (${fmtT(pt.t)})`);
      if (i === dflt) o.selected = true;
      s.append(o);
    });
    return s;
  };
  const from = mk('range-from', 0);
  const to = mk('range-to', points.length - 1);
  const apply = () => {
    const a = points[Number(from.value)]!;
    const b = points[Number(to.value)]!;
    if (a === points[0] && b === points[points.length - 1]) setRange(null, true);
    else setRange({ t0: Math.min(a.t, b.t), t1: Math.max(a.t, b.t), label: `${a.label} → ${b.label}` }, true);
  };
  from.addEventListener('change', apply);
  to.addEventListener('change', apply);
  const reset = el('button', { id: 'range-reset', type: 'button' }, 'whole trace');
  reset.addEventListener('click', () => setRange(null, true));
  return el('div', { class: 'range' },
    el('span', {}, 'Time range: '), el('b', { id: 'range-label' }, state.range ? state.range.label : 'whole trace'),
    el('span', { class: 'sub' }, ' — drag on the chart, or from '), from, el('span', { class: 'sub' }, ' to '), to, ' ', reset);
}

function setRange(r: Range | null, drawSelection: boolean): void {
  state.range = r;
  if (!r) {
    const from = document.getElementById('range-from') as HTMLSelectElement | null;
    const to = document.getElementById('range-to') as HTMLSelectElement | null;
    if (from) from.selectedIndex = 0;
    if (to) to.selectedIndex = to.options.length - 1;
  }
  const lbl = document.getElementById('range-label');
  if (lbl) lbl.textContent = r ? r.label : 'whole trace';
  const u = charts.get('main');
  if (u && drawSelection) {
    if (r) {
      const l = u.valToPos(toX(r.t0), 'x');
      const rr = u.valToPos(toX(r.t1), 'x');
      u.setSelect({ left: l, width: Math.max(1, rr - l), top: 0, height: u.bbox.height / devicePixelRatio }, false);
    } else u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
  }
  drawFlame();
  drawSites();
}

/** Window query over the grid: the cells allocated in the range (or all) and, for outstanding
 *  metrics, still outstanding at its end (or at the end of the trace). */
function windowValues(p: ProcessData, metric: Metric): Float64Array | null {
  const fd = p.flame;
  if (!fd) return null;
  const v = new Float64Array(fd.stacks.length);
  let a0 = 0;
  let a1 = Infinity;
  if (state.range && fd.width > 0) {
    a0 = Math.floor(state.range.t0 / fd.width);
    a1 = Math.floor(state.range.t1 / fd.width);
  }
  for (let i = 0; i < fd.s.length; i++) {
    const a = fd.a[i]!;
    if (a < a0 || a > a1) continue;
    const f = fd.f[i]!;
    if (metric !== 'allocated') {
      const outstanding = state.range ? f === -1 || f > a1 : f === -1;
      if (!outstanding) continue;
    }
    v[fd.s[i]!] += metric === 'count' ? fd.c[i]! : fd.b[i]!;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// flame graph

function flameSection(p: ProcessData): HTMLElement {
  const sec = el('section', { id: 'flame-section' }, el('h2', {}, 'Outstanding memory by stack'));
  if (!p.flame) {
    sec.append(el('p', { class: 'empty' }, 'No stack data for this process.'));
    return sec;
  }
  const metricSel = el('div', { class: 'metric', role: 'radiogroup' });
  const opts: [Metric, string][] = [['bytes', 'outstanding bytes'], ['count', 'outstanding count'], ['allocated', 'total allocated bytes']];
  for (const [m, label] of opts) {
    const input = el('input', { type: 'radio', name: 'metric', value: m, id: `metric-${m}` });
    input.checked = state.metric === m;
    input.addEventListener('change', () => {
      state.metric = m;
      drawFlame();
    });
    metricSel.append(el('label', {}, input, ` ${label}`));
  }
  const search = el('input', { type: 'search', id: 'flame-search', placeholder: 'search frames (regex or text)' });
  search.value = state.search;
  search.addEventListener('input', () => {
    state.search = search.value;
    if (flameChart) {
      if (state.search) flameChart.search(state.search);
      else {
        flameChart.clear();
        document.getElementById('flame-details')!.textContent = 'Hover a frame for details; click to zoom.';
      }
    }
  });
  const reset = el('button', { type: 'button', id: 'flame-reset' }, 'reset zoom');
  reset.addEventListener('click', () => flameChart?.resetZoom());
  sec.append(
    el('div', { class: 'toolbar' }, metricSel, search, reset),
    el('div', { id: 'flame-details', class: 'details' }, 'Hover a frame for details; click to zoom.'),
    el('div', { id: 'flame' }),
    el('p', { class: 'limits' },
      `Icicle graph: outermost callers on top, allocating frames at the bottom; width is the selected measure. Up to ${data.limits.stacks} stacks per process, ${MAX_FLAME_DEPTH} levels deep (the middle of a deeper stack is one elided frame)` +
        (p.flame.dropped ? `; ${p.flame.dropped} smaller stacks are merged into one frame` : '') +
        (p.flame.width ? `. Time ranges snap to ${p.flame.buckets} buckets of ${fmtAge(p.flame.width)}.` : '.')),
  );
  return sec;
}

/** Levels the flame graph draws. d3-flame-graph walks the tree recursively when it zooms, resets
 *  and searches (show(), searchTree(), clear()): a 4,096-frame stack overflowed Chromium's stack
 *  on a click. Deeper stacks keep their outermost callers and their innermost (allocating) frames
 *  around one "(N frames elided)" frame; Chromium failed near 4,000 levels, 8x this. */
export const MAX_FLAME_DEPTH = 512;
const ELIDED = -1;

/** A stack's frames (root first) as the flame graph draws them: at most MAX_FLAME_DEPTH levels. */
function flameFrames(frames: number[]): number[] {
  if (frames.length <= MAX_FLAME_DEPTH) return frames;
  const head = MAX_FLAME_DEPTH / 4;
  const tail = MAX_FLAME_DEPTH - head - 1;
  return [...frames.slice(0, head), ELIDED - (frames.length - head - tail), ...frames.slice(-tail)];
}

function frameName(fi: number): string {
  return fi <= ELIDED ? `(${ELIDED - fi} frames elided)` : data.strings[fi]!;
}

function drawFlame(): void {
  const p = proc();
  const host = document.getElementById('flame');
  if (!host || !p.flame) return;
  const v = windowValues(p, state.metric)!;
  const root: FlameNode = { name: `pid ${p.pid}`, value: 0, children: [] };
  const index = new Map<FlameNode, Map<number, FlameNode>>();
  p.flame.stacks.forEach((frames, si) => {
    const val = v[si]!;
    if (val <= 0) return;
    root.value += val;
    let node = root;
    for (const fi of flameFrames(frames)) {
      let kids = index.get(node);
      if (!kids) {
        kids = new Map();
        index.set(node, kids);
      }
      let child = kids.get(fi);
      if (!child) {
        child = { name: frameName(fi), value: 0, children: [] };
        kids.set(fi, child);
        node.children.push(child);
      }
      child.value += val;
      node = child;
    }
  });
  host.textContent = '';
  flameChart = null;
  const what = state.metric === 'count' ? 'blocks' : 'bytes';
  if (root.value <= 0) {
    host.append(el('p', { class: 'empty', id: 'flame-empty' }, state.range ? 'Nothing allocated in this range is still outstanding at its end.' : 'Nothing outstanding.'));
    return;
  }
  const fmt = (n: number) => (state.metric === 'count' ? `${fmtCount(n)} blocks` : fmtBytes(n));
  const details = document.getElementById('flame-details')!;
  let searchText = '';
  const chart = flamegraph()
    .width(Math.max(480, host.clientWidth || 1100))
    .cellHeight(18)
    .inverted(true)
    .minFrameSize(1)
    .transitionDuration(200)
    .sort((a: any, b: any) => b.value - a.value)
    .label((d: any) => `${d.data.name}\n${fmt(d.value)} (${((100 * d.value) / root.value).toFixed(1)}% of ${what})`)
    // Users type text or a regex; a half-typed regex ("fn(") must not throw: fall back to text.
    .setSearchMatch((d: any, term: string) => {
      if (!term) return false;
      const name = String(d.data.name);
      try {
        return new RegExp(term, 'i').test(name);
      } catch {
        return name.toLowerCase().includes(term.toLowerCase());
      }
    })
    .setSearchHandler((_results: unknown, sum: number, total: number) => {
      searchText = `search "${state.search}": ${fmt(sum)} of ${fmt(total)} (${total ? ((100 * sum) / total).toFixed(1) : '0'}%)`;
      details.textContent = searchText;
    })
    .setDetailsElement(details)
    .setDetailsHandler((text: string | null) => {
      details.textContent = text ?? (state.search && searchText ? searchText : 'Hover a frame for details; click to zoom.');
    });
  select(host).datum(root).call(chart);
  flameChart = chart;
  if (state.search) chart.search(state.search);
}

// ---------------------------------------------------------------------------------------------
// sites table

interface Row {
  label: string;
  via?: string;
  pool?: string;
  bytes: number;
  count: number;
  allocatedBytes: number;
  age?: number;
  verdict?: string;
  why?: string;
  stack: string[];
}

function siteRows(p: ProcessData): Row[] {
  const endT = p.endT;
  if (!state.range || !p.flame) {
    return p.sites.map((s: SiteRow) => ({ ...s, age: endT - s.oldestT }));
  }
  const bytes = windowValues(p, 'bytes')!;
  const count = windowValues(p, 'count')!;
  const alloc = windowValues(p, 'allocated')!;
  const oldest = oldestOutstanding(p);
  const t1 = state.range.t1;
  const byKey = new Map(p.sites.map((s) => [s.key, s]));
  const rows: Row[] = [];
  const unnamed: { row: Row; names: string[] }[] = [];
  p.flame.stacks.forEach((frames, si) => {
    if (bytes[si]! <= 0 && alloc[si]! <= 0) return;
    const id = p.flame!.ids[si];
    const site = byKey.get(String(id)) ?? byKey.get(`pool:${id}`); // heap sites are keyed by stack id, pool sites by pool:<stack>
    const names = frames.map((f) => data.strings[f]!);
    const row: Row = {
      label: site?.label ?? names[names.length - 1] ?? '(no stack)',
      via: site?.via,
      pool: site?.pool,
      bytes: bytes[si]!,
      count: count[si]!,
      allocatedBytes: alloc[si]!,
      // To bucket precision: from the start of the oldest bucket still holding some of it.
      age: Number.isFinite(oldest[si]!) ? Math.max(0, t1 - oldest[si]! * p.flame!.width) : undefined,
      verdict: site?.verdict,
      why: site?.why,
      stack: site?.stack ?? [...names].reverse(),
    };
    rows.push(row);
    if (!site) unnamed.push({ row, names });
  });
  disambiguate(unnamed);
  return rows;
}

/** Per kept stack, the earliest allocation bucket of what is outstanding at the range's end. */
function oldestOutstanding(p: ProcessData): Float64Array {
  const fd = p.flame!;
  const out = new Float64Array(fd.stacks.length).fill(Infinity);
  const a0 = Math.floor(state.range!.t0 / fd.width);
  const a1 = Math.floor(state.range!.t1 / fd.width);
  for (let i = 0; i < fd.s.length; i++) {
    const a = fd.a[i]!;
    const f = fd.f[i]!;
    if (a < a0 || a > a1 || (f !== -1 && f <= a1)) continue;
    if (a < out[fd.s[i]!]!) out[fd.s[i]!] = a;
  }
  return out;
}

/** Stacks without an analysed site are named by their leaf frame; where two share one (one
 *  allocator called from two places), add callers ("leaf ← caller ← …") until the names differ. */
function disambiguate(rows: { row: Row; names: string[] }[]): void {
  for (let depth = 1; depth < 8; depth++) {
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.row.label, (seen.get(r.row.label) ?? 0) + 1);
    const clash = rows.filter((r) => seen.get(r.row.label)! > 1 && r.names.length > depth);
    if (clash.length === 0) return;
    for (const r of clash) r.row.label = r.names.slice(-depth - 1).reverse().join(' ← ');
  }
}

function sitesSection(_p: ProcessData): HTMLElement {
  return el('section', { id: 'sites-section' },
    el('h2', {}, 'Allocation sites'),
    el('p', { class: 'limits', id: 'sites-caption' }, ''),
    el('table', { class: 'sites', id: 'sites' }));
}

function drawSites(): void {
  const p = proc();
  const t = document.getElementById('sites') as HTMLTableElement | null;
  if (!t) return;
  const rows = siteRows(p);
  const { key, desc } = state.sort;
  rows.sort((a: any, b: any) => {
    const x = a[key] ?? -Infinity;
    const y = b[key] ?? -Infinity;
    const c = typeof x === 'string' || typeof y === 'string' ? String(x).localeCompare(String(y)) : x - y;
    return desc ? -c : c;
  });
  lastTableRows = rows.map((r) => ({ label: r.label, bytes: r.bytes, count: r.count, age: r.age }));
  const cap = document.getElementById('sites-caption')!;
  cap.textContent = state.range
    ? `Allocated in ${state.range.label} and still outstanding at its end, per stack (${rows.length} stacks). "allocated" is everything allocated in the range.`
    : `Outstanding at the end of the trace: ${rows.length} of ${p.sitesTotal} sites shown (top ${data.limits.sites} by bytes). Click a row for its stack.`;
  t.textContent = '';
  const cols: [string, string][] = [['label', 'site'], ['bytes', 'bytes'], ['count', 'count'], ['allocatedBytes', 'allocated'], ['age', 'age'], ['verdict', 'verdict']];
  const head = el('tr');
  for (const [k, name] of cols) {
    const th = el('th', { 'data-key': k, class: k === 'label' ? '' : 'num', 'aria-sort': key === k ? (desc ? 'descending' : 'ascending') : 'none' }, name + (key === k ? (desc ? ' ▾' : ' ▴') : ''));
    th.addEventListener('click', () => {
      state.sort = { key: k, desc: state.sort.key === k ? !state.sort.desc : k !== 'label' };
      drawSites();
    });
    head.append(th);
  }
  t.append(el('thead', {}, head));
  const body = el('tbody');
  for (const r of rows.slice(0, data.limits.sites)) {
    const tr = el('tr', { class: 'site' },
      el('td', {}, el('code', {}, r.label), r.via ? el('span', { class: 'sub' }, ` via ${r.via}`) : null, r.pool ? el('span', { class: 'sub' }, ` pool ${r.pool}`) : null),
      el('td', { class: 'num' }, fmtBytes(r.bytes)),
      el('td', { class: 'num' }, fmtCount(r.count)),
      el('td', { class: 'num' }, fmtBytes(r.allocatedBytes)),
      el('td', { class: 'num' }, r.age === undefined ? '–' : fmtAge(r.age)),
      el('td', { title: r.why ?? '' }, verdictBadge(r.verdict)),
    );
    const stackRow = el('tr', { class: 'stack', hidden: '' }, el('td', { colspan: String(cols.length) }, el('ol', {}, ...r.stack.map((f) => el('li', {}, f)))));
    tr.addEventListener('click', () => {
      stackRow.hidden = !stackRow.hidden;
    });
    body.append(tr, stackRow);
  }
  t.append(body);
}

// ---------------------------------------------------------------------------------------------
// pools

function poolsSection(p: ProcessData): HTMLElement {
  const sec = el('section', { id: 'pools-section' }, el('h2', {}, 'Pools'));
  if (p.poolClasses.length) {
    const t = el('table', { class: 'classes' });
    t.append(el('thead', {}, el('tr', {}, ...['pool class', 'kind', 'live', 'created', 'before trace', 'destroyed', 'bytes', 'peak', 'verdict'].map((c) => el('th', {}, c)))));
    const b = el('tbody');
    for (const c of p.poolClasses) {
      b.append(el('tr', { class: c.verdict === 'leak' || c.verdict === 'growing' ? 'bad' : '' },
        el('td', {}, el('code', {}, c.name)), el('td', {}, c.kind), el('td', { class: 'num' }, fmtCount(c.live)),
        el('td', { class: 'num' }, fmtCount(c.created)), el('td', { class: 'num', title: 'alive before the trace began (found in memory, or first seen in use)' }, fmtCount(c.found ?? 0)),
        el('td', { class: 'num' }, fmtCount(c.destroyed)),
        el('td', { class: 'num' }, fmtBytes(c.bytes)), el('td', { class: 'num' }, fmtBytes(c.peakBytes)),
        el('td', { title: c.why }, verdictBadge(c.verdict))));
    }
    t.append(b);
    sec.append(t);
  }
  if (p.pools.length === 0) {
    sec.append(el('p', { class: 'empty' }, 'No live pools at the end of the trace.'));
    return sec;
  }
  sec.append(el('p', { class: 'limits' }, `Pools alive at the end, as a tree (${p.poolsTotal} pools${p.poolsTotal > data.limits.pools ? `, the first ${data.limits.pools} shown` : ''}). Leaking or growing pools are highlighted.`));
  const tree = el('ul', { class: 'pooltree', id: 'pooltree' });
  for (const n of p.pools) tree.append(poolItem(n, 0));
  sec.append(tree);
  return sec;
}

function poolItem(n: PoolNode, depth: number): HTMLElement {
  const bad = n.verdict === 'leak' || n.verdict === 'growing';
  const line = el('span', { class: `pool${bad ? ' bad' : ''}`, title: n.why ?? '' },
    el('code', {}, n.tag || '(untagged)'), ` ${n.kind} ${n.pool} · `, el('b', {}, fmtBytes(n.bytes)),
    n.children.length ? ` (tree ${fmtBytes(n.treeBytes)})` : '', ` · ${fmtCount(n.allocs)} allocs · ${fmtCount(n.clears)} clears · age ${fmtAge(n.age)} · created at `,
    el('code', {}, n.createSite || '?'), ' ', n.verdict ? verdictBadge(n.verdict) : null);
  if (n.children.length === 0) return el('li', {}, line);
  const d = el('details', {}, el('summary', {}, line));
  if (depth < 2) d.open = true;
  const ul = el('ul');
  for (const c of n.children) ul.append(poolItem(c, depth + 1));
  d.append(ul);
  return el('li', {}, d);
}

// ---------------------------------------------------------------------------------------------

function render(): void {
  for (const u of charts.values()) u.destroy();
  charts.clear();
  app.textContent = '';
  const p = proc();
  app.append(header(), summary());
  const chartSec = el('section', { id: 'charts' }, el('h2', {}, `Memory over time — pid ${p.pid}`));
  app.append(chartSec);
  if (data.processes.length > 1) {
    const grid = el('div', { class: 'multiples', id: 'multiples' });
    const n = data.processes.length;
    chartSec.append(el('p', { class: 'limits' }, `${n > MAX_MULTIPLES ? `${MAX_MULTIPLES} of ${n} processes (the selected one, then leaking and growing ones, biggest first)` : `All ${n} processes`} on one scale (total outstanding, RSS dashed); click one to inspect it.`), grid);
    smallMultiples(grid);
  }
  const main = el('div', { id: 'main-chart' });
  chartSec.append(rangeControls(p), main);
  mainChart(p, main);
  chartSec.append(el('p', { class: 'limits' }, `Series are sampled on ${data.limits.points} points (the peak between two points is kept); up to ${data.limits.lines} pool classes and sites are drawn. Markers are purple dashed lines.`));
  app.append(flameSection(p), sitesSection(p), poolsSection(p));
  drawFlame();
  drawSites();
}

render();
(window as any).__leakscope = {
  data,
  state,
  charts,
  flame: () => flameChart,
  tableRows: () => lastTableRows,
  setRange: (t0: number, t1: number) => setRange({ t0, t1, label: `${fmtT(t0)} – ${fmtT(t1)}` }, true),
  selectProcess,
};
