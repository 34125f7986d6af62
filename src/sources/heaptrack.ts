// heaptrack's final (interpreted) data files, `heaptrack.NAME.PID.zst|gz`, file formats 2 and 3.
//
// Records, one per line, numbers in lower-case hex: `v VERSION FORMAT`, `X cmdline`,
// `I PAGESIZE PHYSPAGES`, `A` (attached), `s STRING` (format 3: `s HEXLEN BYTES`),
// `i IP MODULE [FUNC [FILE LINE [INLFUNC INLFILE INLLINE]...]]`, `t IP PARENT`, `a SIZE TRACE`,
// `+ INFO`, `- INFO`, `c MS`, `R PAGES`. Tables are indexed implicitly in order of appearance
// (strings, ips and traces from 1, allocation infos from 0).
//
// heaptrack resolves pointers away: a `-` names only the allocation info of the block freed.
// Blocks of one info are interchangeable (same size, same stack), so each gets a synthetic
// address and a `-` frees the info's most recent live block; outstanding bytes per stack are
// then exactly heaptrack's "leaked" figures. An `i` line's frames are innermost first (the
// function the ip is in, then the functions it was inlined into), all but the last inlined.
// Trace nodes are a tree already, so stack ids are assigned directly, without re-interning.

import type { Event, EventSink, FastEventSink, TraceMeta } from '../model/events.js';
import { fastSink, frame } from '../model/events.js';
import { FORMAT_VERSION } from '../trace/format.js';
import type { Source, SourceInput, SourceStats } from './source.js';
import { emptyStats } from './source.js';
import { hexDigit, sampleLine } from './line-reader.js';
import { addDamage } from './damage.js';
import { BinaryLines } from './binary-lines.js';

/** Synthetic block addresses: small, so they stay V8 small integers (no boxing per event). */
const ADDR_BASE = 0x10;
/** Longer lines are cut (a damaged file must not eat memory). */
const MAX_LINE = 1 << 20;

/** Grows an Int32Array-backed table. */
class IntTable {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Int32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
}

export class HeaptrackDecoder {
  readonly stats: SourceStats = emptyStats();
  private lineNo = 0;
  private fileFormat = 3;
  private pageSize = 4096;
  private announced = false;
  private command = '';
  private t = 0;
  private readonly strings: string[] = [''];
  /** Per ip (1-based): our frame ids, outermost first. */
  private readonly ipFrames: number[][] = [[]];
  /** Per trace node (1-based): our stack id. */
  private readonly traceStack = new IntTable();
  private readonly infoSize: number[] = [];
  private readonly infoStack = new IntTable();
  private readonly live: (number[] | undefined)[] = [];
  private nextFrame = 1;
  private nextStack = 1;
  private nextAddr = ADDR_BASE;
  private unknownFrees = 0;
  private rawFormat = false;
  // Allocations of the current time tick (heaptrack stamps time every few ms), folded per
  // allocation info until the tick ends; see plusMinus.
  /** Infos touched in this tick. */
  private readonly tickInfos = new IntTable();
  /** Per info: blocks allocated in this tick and still live. */
  private tickNew = new Int32Array(256);
  /** Per info: blocks allocated and freed within this tick. */
  private tickGone = new Int32Array(256);
  private readonly transient: FastEventSink['transient'];
  /** Lines holding NUL bytes. */
  readonly binary = new BinaryLines();
  attached = false;
  /** The sink's fast path (the engine): + and - records become direct calls, no Event objects. */
  private readonly fast: FastEventSink | undefined;

  constructor(private readonly sink: EventSink, private readonly pid: number) {
    this.traceStack.push(0);
    this.fast = fastSink(sink);
    this.transient = this.fast?.transient?.bind(this.fast);
  }

  private emit(e: Event): void {
    this.stats.events++;
    this.sink.event(e);
  }

  private bad(buf: Buffer, s: number, e: number, why: string): void {
    this.stats.badRecords++;
    if (this.stats.badSamples.length < 5) this.stats.badSamples.push(sampleLine(this.lineNo, buf, s, e, why));
  }

  private announce(): void {
    this.announced = true;
    const exe = this.command.split(' ')[0] ?? '';
    this.emit({ kind: 'process', pid: this.pid, t: this.t, ppid: 0, command: this.command, exe });
  }

  line(buf: Buffer, start: number, end: number): void {
    this.lineNo++;
    if (end <= start) return;
    // A NUL byte is no text heaptrack wrote: damage, as in every text source (line-reader.ts).
    if (buf.subarray(start, end).includes(0)) {
      this.binary.note(this.lineNo);
      return;
    }
    const c = buf[start]!;
    // Hot path first: + and - lines are almost all of a trace.
    if ((c === 43 || c === 45) && buf[start + 1] === 32) {
      let v = 0;
      let p = start + 2;
      let d = 0;
      for (; p < end; p++) {
        const x = hexDigit(buf[p]!);
        if (x < 0) break;
        v = v * 16 + x;
        d++;
      }
      if (!d || (p < end && buf[p] !== 32 && buf[p] !== 13)) return this.bad(buf, start, end, 'bad allocation index');
      if (p < end && buf[p] === 32) {
        // `+ SIZE TRACE PTR` / `- PTR`: heaptrack's raw, uninterpreted data.
        if (!this.rawFormat) this.stats.warnings.push('this is raw heaptrack data: run heaptrack_interpret on it first (or open the .zst heaptrack wrote)');
        this.rawFormat = true;
        return this.bad(buf, start, end, 'raw (uninterpreted) record');
      }
      if (!this.plusMinus(c, v)) this.bad(buf, start, end, 'allocation info not defined');
      return;
    }
    // Anything else ends the tick's folding (only `c` changes the time, but keeping every
    // other record in order with the allocations costs nothing: they are rare).
    if (this.tickInfos.length) this.flushTick();
    if (buf[start + 1] !== 32 && end - start > 1) {
      if (c === 35) return; // comment
      return this.bad(buf, start, end, 'unknown record');
    }
    switch (c) {
      case 115: return this.string(buf, start + 2, end);
      case 105: return this.ip(buf, start, end);
      case 116: return this.trace(buf, start, end);
      case 97: return this.info(buf, start, end);
      case 99: {
        const ms = hexField(buf, start + 2, end);
        if (ms < 0) return this.bad(buf, start, end, 'bad time');
        this.t = ms * 1e6;
        return;
      }
      case 82: {
        const pages = hexField(buf, start + 2, end);
        if (pages < 0) return this.bad(buf, start, end, 'bad RSS');
        if (!this.announced) this.announce();
        this.emit({ kind: 'rss', pid: this.pid, t: this.t, bytes: pages * this.pageSize });
        return;
      }
      case 118: {
        const f = fields(buf, start + 2, end);
        if (f.length >= 2) this.fileFormat = f[1]!;
        if (this.fileFormat < 2) this.stats.warnings.push(`heaptrack file format ${this.fileFormat} is older than supported (2, 3); reading it anyway`);
        return;
      }
      case 88:
        this.command = buf.toString('utf8', start + 2, end).trimEnd();
        return;
      case 73: {
        const f = fields(buf, start + 2, end);
        if (f[0]! > 0) this.pageSize = f[0]!;
        return;
      }
      case 65:
        this.attached = true;
        this.stats.warnings.push('heaptrack attached to a running process: allocations made before it attached are unknown');
        return;
      case 35: // `# strings: N`, `# ips: N` trailers
        return;
      case 109: // `m` module lines exist only in raw data
        if (!this.rawFormat) this.stats.warnings.push('this is raw heaptrack data: run heaptrack_interpret on it first (or open the .zst heaptrack wrote)');
        this.rawFormat = true;
        return this.bad(buf, start, end, 'raw (uninterpreted) record');
      default:
        return this.bad(buf, start, end, 'unknown record');
    }
  }

  /** A `+ INFO` (c = '+') or `- INFO` record; false when the info is not defined.
   *  Records of one time tick happen at the same time, so they are folded per info: a `-`
   *  frees the info's most recent live block (heaptrack names no address), which is one of this
   *  tick's blocks while any is live — such a pair never goes through the live table but reaches
   *  the sink as a transient allocation when the tick ends; a block still live then is an
   *  ordinary allocation, and a `-` with none of this tick's blocks live frees an older one at
   *  once. Leaked and allocated figures are exact; the series see the tick's net change (the
   *  peak within one tick is approximate). */
  private plusMinus(c: number, v: number): boolean {
    if (v >= this.infoSize.length) return false;
    if (!this.announced) this.announce();
    if (v >= this.tickNew.length) this.growTick(v);
    if (c === 43) {
      if (this.tickNew[v] === 0 && this.tickGone[v] === 0) this.tickInfos.push(v);
      this.tickNew[v]!++;
      return true;
    }
    if (this.tickNew[v]! > 0) {
      this.tickNew[v]!--;
      this.tickGone[v]!++;
      return true;
    }
    const l = this.live[v];
    if (!l || l.length === 0) { this.unknownFrees++; return true; }
    this.stats.events++;
    const addr = l.pop()!;
    if (this.fast) this.fast.free(this.pid, 0, this.t, addr);
    else this.sink.event({ kind: 'free', pid: this.pid, t: this.t, tid: 0, addr });
    return true;
  }

  private growTick(v: number): void {
    let n = this.tickNew.length;
    while (n <= v) n *= 2;
    const a = new Int32Array(n);
    a.set(this.tickNew);
    this.tickNew = a;
    const b = new Int32Array(n);
    b.set(this.tickGone);
    this.tickGone = b;
  }

  /** The tick's folded allocations, to the sink. */
  private flushTick(): void {
    const infos = this.tickInfos.data;
    const t = this.t;
    for (let k = 0; k < this.tickInfos.length; k++) {
      const v = infos[k]!;
      const size = this.infoSize[v]!;
      const stack = this.infoStack.data[v]!;
      const gone = this.tickGone[v]!;
      const fresh = this.tickNew[v]!;
      this.tickGone[v] = 0;
      this.tickNew[v] = 0;
      this.stats.events += 2 * gone + fresh;
      if (this.transient) {
        if (gone > 0) this.transient(this.pid, 0, t, size, stack, gone);
      } else {
        for (let i = 0; i < gone; i++) {
          const addr = this.allocate(size, stack);
          if (this.fast) this.fast.free(this.pid, 0, t, addr);
          else this.sink.event({ kind: 'free', pid: this.pid, t, tid: 0, addr });
        }
      }
      if (fresh === 0) continue;
      let l = this.live[v];
      if (!l) { l = []; this.live[v] = l; }
      for (let i = 0; i < fresh; i++) l.push(this.allocate(size, stack));
    }
    this.tickInfos.length = 0;
  }

  /** One allocation with a new synthetic address, to the sink; returns the address. */
  private allocate(size: number, stack: number): number {
    const addr = this.nextAddr;
    this.nextAddr += 16;
    if (this.fast) this.fast.alloc(this.pid, 0, this.t, addr, size, stack);
    else this.sink.event({ kind: 'alloc', pid: this.pid, t: this.t, tid: 0, addr, size, stack });
    return addr;
  }

  private carry: Buffer | null = null;

  /** Reads a chunk: `+`/`-` lines (nearly all of a trace) are parsed in place, without a
   *  per-line call; every other line, and a line split across chunks, goes through line(). */
  feed(chunk: Buffer): void {
    let pos = 0;
    const n = chunk.length;
    if (this.carry) {
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        if (this.carry.length < MAX_LINE) this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      const line = Buffer.concat([this.carry, chunk.subarray(0, nl)]);
      this.carry = null;
      this.line(line, 0, Math.min(line.length, MAX_LINE));
      pos = nl + 1;
    }
    while (pos < n) {
      const c = chunk[pos]!;
      if ((c === 43 || c === 45) && chunk[pos + 1] === 32) {
        let p = pos + 2;
        let v = 0;
        let x: number;
        while (p < n && (x = hexDigit(chunk[p]!)) >= 0) { v = v * 16 + x; p++; }
        if (p < n && chunk[p] === 10 && p > pos + 2) {
          this.lineNo++;
          if (!this.plusMinus(c, v)) this.bad(chunk, pos, p, 'allocation info not defined');
          pos = p + 1;
          continue;
        }
        if (p >= n) break;
      }
      const nl = chunk.indexOf(10, pos);
      if (nl < 0) break;
      this.line(chunk, pos, Math.min(nl, pos + MAX_LINE));
      pos = nl + 1;
    }
    if (pos < n) this.carry = Buffer.from(chunk.subarray(pos, Math.min(n, pos + MAX_LINE)));
  }

  /** The last line, when the input does not end with a newline. */
  /** The end of the input; true when it ends inside a record (heaptrack ends every record with
   *  a newline, so the file was cut): that partial record is counted bad, not read — a cut
   *  `+ 1a` would read as `+ 1`. */
  end(): boolean {
    const cut = this.carry !== null && this.carry.length > 0;
    if (cut) {
      this.lineNo++;
      this.bad(this.carry!, 0, this.carry!.length, 'cut short');
    }
    this.carry = null;
    if (this.tickInfos.length) this.flushTick();
    return cut;
  }

  private string(buf: Buffer, p: number, end: number): void {
    if (this.fileFormat >= 3) {
      let len = 0;
      let q = p;
      for (; q < end && buf[q] !== 32; q++) {
        const x = hexDigit(buf[q]!);
        if (x < 0) { len = -1; break; }
        len = len * 16 + x;
      }
      if (len >= 0 && q < end + 1) {
        const s = q + 1;
        this.strings.push(buf.toString('utf8', Math.min(s, end), Math.min(s + len, end)));
        return;
      }
    }
    this.strings.push(buf.toString('utf8', p, end));
  }

  private ip(buf: Buffer, start: number, end: number): void {
    const f = fields(buf, start + 2, end);
    if (f.length < 2 || f.some((x) => x < 0)) {
      this.ipFrames.push([]);
      return this.bad(buf, start, end, 'bad instruction pointer record');
    }
    const pc = f[0]!;
    const module = this.strings[f[1]!] ?? '';
    // Innermost first: the function of the ip, then those it is inlined into.
    const leafFirst = [];
    if (f.length >= 3) {
      leafFirst.push({ fn: this.strings[f[2]!] ?? '', file: this.strings[f[3]!] ?? '', line: f[4] ?? 0 });
      for (let k = 5; k + 2 < f.length; k += 3) {
        leafFirst.push({ fn: this.strings[f[k]!] ?? '', file: this.strings[f[k + 1]!] ?? '', line: f[k + 2]! });
      }
    } else {
      leafFirst.push({ fn: '', file: '', line: 0 });
    }
    const ids: number[] = [];
    for (let k = leafFirst.length - 1; k >= 0; k--) {
      const x = leafFirst[k]!;
      const id = this.nextFrame++;
      this.emit({ kind: 'frame', pid: this.pid, t: 0, id, frame: frame({ pc, module, fn: x.fn, file: x.file, line: x.line, inlined: k < leafFirst.length - 1 }) });
      ids.push(id);
    }
    this.ipFrames.push(ids);
  }

  private trace(buf: Buffer, start: number, end: number): void {
    const f = fields(buf, start + 2, end);
    const ipIndex = f[0] ?? -1;
    const parentTrace = f[1] ?? -1;
    if (f.length < 2 || ipIndex < 0 || parentTrace < 0 || parentTrace >= this.traceStack.length || ipIndex >= this.ipFrames.length) {
      this.traceStack.push(0);
      return this.bad(buf, start, end, 'bad trace record');
    }
    let stack = this.traceStack.data[parentTrace]!;
    for (const fr of this.ipFrames[ipIndex]!) {
      const id = this.nextStack++;
      this.emit({ kind: 'stack', pid: this.pid, t: 0, id, parent: stack, frame: fr });
      stack = id;
    }
    this.traceStack.push(stack);
  }

  private info(buf: Buffer, start: number, end: number): void {
    const f = fields(buf, start + 2, end);
    const size = f[0] ?? -1;
    const tr = f[1] ?? -1;
    if (f.length < 2 || size < 0 || tr < 0 || tr >= this.traceStack.length) {
      this.infoSize.push(0);
      this.infoStack.push(0);
      return this.bad(buf, start, end, 'bad allocation info');
    }
    this.infoSize.push(size);
    this.infoStack.push(this.traceStack.data[tr]!);
  }

  finish(): SourceStats {
    if (!this.announced) this.announce();
    if (this.unknownFrees) this.stats.warnings.push(`${this.unknownFrees} free(s) of allocations the trace never made (ignored)`);
    return this.stats;
  }
}

/** Space-separated hex numbers; -1 for a field that is not hex. */
function fields(buf: Buffer, p: number, end: number): number[] {
  const out: number[] = [];
  while (p < end) {
    while (p < end && buf[p] === 32) p++;
    if (p >= end || buf[p] === 13) break;
    let v = 0;
    let ok = true;
    for (; p < end && buf[p] !== 32 && buf[p] !== 13; p++) {
      const x = hexDigit(buf[p]!);
      if (x < 0) ok = false;
      else v = v * 16 + x;
    }
    out.push(ok ? v : -1);
  }
  return out;
}

function hexField(buf: Buffer, p: number, end: number): number {
  let v = 0;
  let d = 0;
  for (; p < end; p++) {
    const x = hexDigit(buf[p]!);
    if (x < 0) break;
    v = v * 16 + x;
    d++;
  }
  return d ? v : -1;
}

/** The pid from heaptrack's file name (`heaptrack.NAME.PID.zst`), else a stable stand-in. */
export function heaptrackPid(path: string): number {
  const m = /heaptrack\..*\.(\d+)(\.(zst|gz|raw))?$/.exec(path);
  if (m) return Number(m[1]);
  let h = 0;
  for (let i = 0; i < path.length; i++) h = (h * 31 + path.charCodeAt(i)) >>> 0;
  return 1_000_000 + (h % 1_000_000);
}

export const heaptrackSource: Source = {
  name: 'heaptrack',
  description: 'heaptrack data file (heaptrack.NAME.PID.zst or .gz, file format 2 or 3)',
  detect(head: Buffer, path: string): number {
    if (head.length < 4 || head[0] !== 118 || head[1] !== 32) return 0;
    const first = head.toString('latin1', 0, Math.min(head.length, 64)).split('\n')[0]!;
    if (!/^v [0-9a-f]+ [0-9a-f]+$/.test(first.trimEnd())) return 0;
    return /heaptrack/.test(path) ? 0.95 : 0.85;
  },
  meta(input: SourceInput): TraceMeta {
    return { format: FORMAT_VERSION, clock: 'ns', source: 'heaptrack', command: input.path };
  },
  async read(input: SourceInput, sink: EventSink): Promise<SourceStats> {
    const dec = new HeaptrackDecoder(sink, heaptrackPid(input.path));
    for await (const chunk of input.stream) dec.feed(chunk);
    if (dec.end()) addDamage(dec.stats, `${input.path}: ends in the middle of a record (cut short?); the records before it were read`);
    const binary = dec.binary.warning(input.path);
    if (binary) addDamage(dec.stats, binary, true);
    return dec.finish();
  },
};
