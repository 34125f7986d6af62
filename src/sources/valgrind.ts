// Valgrind memcheck XML (`--xml=yes --xml-file=F --leak-check=full --show-leak-kinds=all`).
//
// Each leak record (`<error>` with a `Leak_*` kind) becomes its blocks as outstanding
// allocations at the record's stack: `leakedblocks` alloc events whose sizes add up to the
// record's direct bytes (a definitely-lost record's "(N direct, M indirect)" bytes are split:
// the indirect blocks have their own records with --show-leak-kinds=all; without them they are
// kept in the direct record so no byte is lost). The loss kind is the stack's outermost frame
// (`[definitely lost]`), so every report and flame graph separates the kinds. Frames carry
// fn/file/line/module/pc so pool-aware suppressions can pick the caller above a pool API.
// One file per process (`%p`); several files are several processes. The file has no clock:
// t is the record's index.

import { SaxesParser } from 'saxes';
import type { Event, EventSink, Frame, TraceMeta } from '../model/events.js';
import { frame } from '../model/events.js';
import { StackInterner } from '../model/stacks.js';
import { FORMAT_VERSION } from '../trace/format.js';
import type { Source, SourceInput, SourceStats } from './source.js';
import { emptyStats } from './source.js';
import { addDamage } from './damage.js';
import { MAX_PID, MAX_SIZE } from '../model/limits.js';

const KIND_LABEL: Record<string, string> = {
  Leak_DefinitelyLost: '[definitely lost]',
  Leak_IndirectlyLost: '[indirectly lost]',
  Leak_PossiblyLost: '[possibly lost]',
  Leak_StillReachable: '[still reachable]',
};

export interface LeakRecord {
  kind: string;
  bytes: number;
  /** Bytes of the record's own blocks (bytes minus what it holds indirectly). */
  directBytes: number;
  indirectBytes: number;
  blocks: number;
  frames: Frame[];
}

interface RawFrame { ip: string; obj: string; fn: string; dir: string; file: string; line: string }

/** Fake addresses for the leaked blocks: the XML has none, and they must not collide. */
const ADDR_BASE = 0x7e00_0000_0000;
/** Blocks expanded into allocations per file. A count in the XML is a claim, not memory to
 *  spend: past this many, each further record becomes one allocation holding all its bytes. */
export const MAX_EXPANDED_BLOCKS = 1_000_000;

export class ValgrindDecoder {
  readonly stats: SourceStats = emptyStats();
  readonly records: LeakRecord[] = [];
  pid = 0;
  ppid = 0;
  command = '';
  exe = '';
  otherErrors = 0;
  private readonly parser = new SaxesParser();
  private path: string[] = [];
  private text = '';
  private err: { kind: string; bytes: number; blocks: number; what: string; frames: RawFrame[] } | null = null;
  private fr: RawFrame | null = null;
  private inArgv = false;
  private argv: string[] = [];
  private inStack = 0;

  constructor() {
    const p = this.parser;
    p.on('opentag', (t) => {
      this.path.push(t.name);
      this.text = '';
      if (t.name === 'error' && this.path.length === 2) this.err = { kind: '', bytes: 0, blocks: 0, what: '', frames: [] };
      else if (t.name === 'stack' && this.err) this.inStack++;
      else if (t.name === 'frame' && this.err && this.inStack === 1) this.fr = { ip: '', obj: '', fn: '', dir: '', file: '', line: '' };
      else if (t.name === 'argv') this.inArgv = true;
    });
    p.on('text', (s) => { this.text += s; });
    p.on('cdata', (s) => { this.text += s; });
    p.on('closetag', (t) => {
      const name = t.name;
      const parent = this.path[this.path.length - 2];
      const v = this.text.trim();
      this.text = '';
      if (this.fr && parent === 'frame') {
        if (name === 'ip' || name === 'obj' || name === 'fn' || name === 'dir' || name === 'file' || name === 'line') this.fr[name] = v;
      } else if (name === 'frame' && this.fr) {
        this.err!.frames.push(this.fr);
        this.fr = null;
      } else if (name === 'stack' && this.err) {
        this.inStack--;
      } else if (this.err && parent === 'error' && name === 'kind') this.err.kind = v;
      else if (this.err && parent === 'xwhat') {
        if (name === 'leakedbytes') this.err.bytes = Number(v);
        else if (name === 'leakedblocks') this.err.blocks = Number(v);
        else if (name === 'text') this.err.what = v;
      } else if (name === 'error' && this.err) {
        this.finishError(this.err);
        this.err = null;
        this.inStack = 0;
      } else if (this.path.length === 2 && name === 'pid') this.pid = pidOf(v);
      else if (this.path.length === 2 && name === 'ppid') this.ppid = pidOf(v);
      else if (this.inArgv && (name === 'exe' || name === 'arg')) this.argv.push(v);
      else if (name === 'argv') {
        this.inArgv = false;
        this.exe = this.argv[0] ?? '';
        this.command = this.argv.join(' ');
      }
      this.path.pop();
    });
  }

  write(chunk: string): void {
    this.parser.write(chunk);
  }

  close(): void {
    this.parser.close();
  }

  private finishError(e: { kind: string; bytes: number; blocks: number; what: string; frames: RawFrame[] }): void {
    if (!e.kind.startsWith('Leak_')) {
      this.otherErrors++;
      return;
    }
    if (!Number.isSafeInteger(e.bytes) || !Number.isSafeInteger(e.blocks) || e.bytes < 0 || e.blocks < 0 || e.bytes > MAX_SIZE) {
      this.stats.badRecords++;
      if (this.stats.badSamples.length < 5) this.stats.badSamples.push(`line ${this.parser.line}: loss record ${this.records.length + 1}: bad byte or block count`);
      return;
    }
    // "1,780 (280 direct, 1,500 indirect) bytes in 5 blocks ..."
    const m = /\(([\d,]+) direct, ([\d,]+) indirect\)/.exec(e.what);
    const direct = m ? Number(m[1]!.replace(/,/g, '')) : e.bytes;
    const indirect = m ? Number(m[2]!.replace(/,/g, '')) : 0;
    const raw = e.frames;
    const frames = raw.map((f, i) => frame({
      pc: parseInt(f.ip, 16) || 0,
      module: f.obj,
      fn: f.fn,
      file: f.file,
      line: Number(f.line) || 0,
      // Valgrind prints an inlined call as an extra frame with the caller's ip.
      inlined: i + 1 < raw.length && raw[i + 1]!.ip === f.ip && f.ip !== '',
    }));
    frames.push(frame({ fn: KIND_LABEL[e.kind] ?? `[${e.kind}]` }));
    this.records.push({ kind: e.kind, bytes: e.bytes, directBytes: direct, indirectBytes: indirect, blocks: e.blocks, frames });
  }

  /** Emits the process and its loss records as outstanding allocations. */
  emit(sink: EventSink, fallbackPid: number): void {
    const pid = this.pid || fallbackPid;
    const out = (e: Event) => {
      this.stats.events++;
      sink.event(e);
    };
    out({ kind: 'process', pid, t: 0, ppid: this.ppid, command: this.command, exe: this.exe });
    const interner = new StackInterner({ event: out }, pid);
    const hasIndirect = this.records.some((r) => r.kind === 'Leak_IndirectlyLost');
    let addr = ADDR_BASE;
    let t = 0;
    let budget = MAX_EXPANDED_BLOCKS;
    let cut = 0;
    let claimed = 0;
    for (const r of this.records) {
      t++;
      const stack = interner.stackId(r.frames);
      const bytes = hasIndirect ? r.directBytes : r.bytes;
      const claim = Math.max(r.blocks, bytes > 0 ? 1 : 0);
      const blocks = Math.min(claim, Math.max(budget, claim > 0 ? 1 : 0));
      budget = Math.max(0, budget - blocks);
      if (blocks < claim) {
        cut++;
        claimed += claim;
      }
      // Split the bytes over the blocks exactly (the XML gives only the sum).
      const each = blocks ? Math.floor(bytes / blocks) : 0;
      let extra = bytes - each * blocks;
      for (let i = 0; i < blocks; i++) {
        const size = each + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        out({ kind: 'alloc', pid, t, tid: 0, addr, size, stack });
        addr += Math.max(16, size + 16);
      }
    }
    if (cut) {
      this.stats.warnings.push(`${cut} loss record(s) claim ${claimed.toLocaleString('en')} blocks, more than the ${MAX_EXPANDED_BLOCKS.toLocaleString('en')} leakscope expands per file: their bytes are all kept, in fewer allocations, so block counts are lower than Valgrind's`);
    }
  }
}

/** A pid from the XML, or 0 (unknown) when it is no pid. */
function pidOf(v: string): number {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 && n <= MAX_PID ? n : 0;
}

/** A stand-in pid for a file without <pid> (cut before it): stable per path. */
function pathPid(path: string): number {
  let h = 0;
  for (let i = 0; i < path.length; i++) h = (h * 31 + path.charCodeAt(i)) >>> 0;
  return 1_000_000 + (h % 1_000_000);
}

export const valgrindSource: Source = {
  name: 'valgrind',
  description: 'Valgrind memcheck XML (--xml=yes --leak-check=full), one file per process',
  detect(head: Buffer): number {
    const text = head.toString('latin1', 0, Math.min(head.length, 8192));
    if (!text.includes('<valgrindoutput>')) return 0;
    return text.includes('<protocoltool>memcheck</protocoltool>') ? 0.95 : 0.6;
  },
  meta(input: SourceInput): TraceMeta {
    return { format: FORMAT_VERSION, clock: 'seq', source: 'valgrind', command: input.path };
  },
  async read(input: SourceInput, sink: EventSink): Promise<SourceStats> {
    const dec = new ValgrindDecoder();
    const td = new TextDecoder('utf-8');
    let broken = '';
    try {
      for await (const chunk of input.stream) {
        dec.write(td.decode(chunk, { stream: true }));
      }
      dec.write(td.decode());
      dec.close();
    } catch (err) {
      // A file cut short (valgrind killed) or damaged: keep every complete record before it.
      broken = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    }
    if (broken) addDamage(dec.stats, `${input.path}: XML ends early or is damaged (${broken}); ${dec.records.length} complete loss record(s) kept`);
    if (!dec.pid && !dec.records.length && broken) dec.stats.badRecords++;
    if (!broken && dec.records.length === 0) {
      dec.stats.warnings.push(`${input.path}: no leak records: run valgrind with --leak-check=full --show-leak-kinds=all (or the program leaked nothing)`);
    }
    if (dec.otherErrors) dec.stats.warnings.push(`${input.path}: ${dec.otherErrors} memcheck error(s) that are not leaks (invalid reads/writes...) not shown`);
    dec.emit(sink, pathPid(input.path));
    return dec.stats;
  },
};
