// The input layer: any file (or `-` for stdin) → its format → events in one sink.
// Per file: open, decompress (by magic bytes), peek the first 64 KiB, let every source rate it
// (`--from` forces one), then stream it through that source. Several files go to one sink in
// the order given; their clocks must agree, and each later file's times are placed after (seq)
// or beside (ns, by wall clock) the earlier ones.

import { createReadStream, ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Event, EventSink, FastEventSink, TraceMeta } from '../model/events.js';
import { fastSink } from '../model/events.js';
import { fastOutOfRange, outOfRange } from '../model/limits.js';
import { inputError, UserError } from '../errors.js';
import { noProgress } from '../progress.js';
import type { Progress, StartProgress } from '../progress.js';
import type { Source, SourceInput, SourceStats } from './source.js';
import { sources, sourceByName } from './registry.js';
import { decompress, detectCompression } from '../io/decompress.js';
import type { Compression } from '../io/decompress.js';

export const HEAD_BYTES = 64 * 1024;

export interface ReadInputsOptions {
  /** Force this source (by name) instead of detecting the format. */
  from?: string;
  /** Reports the bytes read of all inputs (the CLI draws a bar on a TTY). */
  progress?: StartProgress;
  /** Each warning of the input layer and of trace files as it happens (they are also in the
   *  stats); `damaged`: it says the input is damaged. */
  onWarning?: (msg: string, damaged: boolean) => void;
  /** Called with the first file's metadata before any event reaches the sink (e.g. to write a trace header). */
  onMeta?: (meta: TraceMeta) => void;
}

export interface InputStats extends SourceStats {
  path: string;
  /** Name of the source that read the file. */
  source: string;
  compression: Compression;
  /** Bytes of the file as stored (compressed). */
  bytes: number;
  /** Chunks, for leakscope traces. */
  chunks?: number;
  /** The damage warnings among `warnings` (the decompressor's, then the source's), in order. */
  damaged: string[];
  /** Records dropped for a value out of range (model/limits.ts), apart from badRecords. */
  dropped: number;
}

export interface InputsResult {
  meta: TraceMeta;
  stats: InputStats[];
}

interface OpenedInput {
  input: SourceInput & { head: Buffer };
  compression: Compression;
  rawSize: number | undefined;
  /** Warnings of the decompressor (all damage), filled while the stream is read. */
  warnings: string[];
  /** Releases the file (also when the source stopped early). */
  close(): Promise<void>;
}

/** Streams the events of every input file, in order, to `sink`. */
export async function readInputs(paths: string[], sink: EventSink, opts: ReadInputsOptions = {}): Promise<InputsResult> {
  if (paths.length === 0) throw new UserError('no input files given');
  const forced = opts.from === undefined ? undefined : forcedSource(opts.from);
  const sizes = await Promise.all(paths.map(checkFile));
  const total = sizes.reduce<number>((a, b) => a + (b ?? 0), 0);
  const progress: Progress = opts.progress ? opts.progress('reading', total) : noProgress;
  let doneBefore = 0;
  const stats: InputStats[] = [];
  let meta: TraceMeta | undefined;
  const fast = fastSink(sink);
  const placer = fast ? new FastTimePlacer(fast) : new TimePlacer(sink);
  try {
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i]!;
      let rawRead = 0;
      const opened = await openInput(path, (n) => {
        rawRead += n;
        progress.update(doneBefore + rawRead);
      }, opts.onWarning);
      let source: Source;
      let st: SourceStats;
      try {
        source = forced ?? pickSource(opened.input);
        const fileMeta = source.meta(opened.input);
        meta = meta === undefined ? { ...fileMeta } : mergeMeta(meta, fileMeta, paths[0]!, path);
        placer.startFile(fileMeta, meta);
        if (i === 0) opts.onMeta?.({ ...meta });
        st = await source.read(opened.input, placer);
      } catch (err) {
        throw inputError(path, err);
      } finally {
        await opened.close();
      }
      const dropped = placer.droppedWarning(path);
      const warnings = [...opened.warnings, ...(dropped ? [dropped] : []), ...st.warnings];
      const damaged = [...opened.warnings, ...(dropped ? [dropped] : []), ...(st.damaged ?? [])];
      stats.push({ ...st, dropped: placer.dropped, warnings, damaged, path, source: source.name, compression: opened.compression, bytes: opened.rawSize ?? rawRead });
      doneBefore += sizes[i] ?? rawRead;
    }
  } finally {
    progress.stop();
  }
  if (paths.length > 1) meta!.command = meta!.command ?? paths.join(' ');
  return { meta: meta!, stats };
}

/** Size of a regular file (undefined for stdin and pipes); a clear error for anything unreadable. */
async function checkFile(path: string): Promise<number | undefined> {
  if (path === '-') return undefined;
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw inputError(path, err);
  }
  if (st.isDirectory()) throw new UserError(`${path}: is a directory; give the trace or log files inside it`);
  if (st.isSocket()) throw new UserError(`${path}: is a socket, not a file; give the trace or log file`);
  if (st.isFile() && st.size === 0) throw new UserError(`${path}: empty file; nothing to analyze (check the path, or that the server has written its log yet)`);
  return st.isFile() ? st.size : undefined;
}

/** Opens, decompresses and peeks one input. */
export async function openInput(path: string, onRaw?: (bytes: number) => void, onWarning?: (msg: string, damaged: boolean) => void): Promise<OpenedInput> {
  const size = await checkFile(path);
  const rawStream: AsyncIterable<Buffer> = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: 1024 * 1024 });
  const raw = peekable(counted(rawStream, onRaw));
  let rawHead: Buffer;
  try {
    rawHead = await raw.peek(4);
  } catch (err) {
    throw inputError(path, err);
  }
  const compression = detectCompression(rawHead);
  const warnings: string[] = [];
  const warn = (msg: string) => {
    warnings.push(msg);
    onWarning?.(msg, true);
  };
  const plain = peekable(decompress(path, raw.stream(), compression, warn));
  const close = async () => {
    if (rawStream instanceof ReadStream) rawStream.destroy();
    // Ends the decompressor too (a zstd child left waiting for input keeps the process alive).
    await plain.close();
  };
  let head: Buffer;
  try {
    head = await plain.peek(HEAD_BYTES);
  } catch (err) {
    await close();
    throw inputError(path, err);
  }
  if (head.length === 0) {
    await close();
    if (warnings.length) throw new UserError(`${path}: ${compression} data cut short or damaged before any byte could be decompressed`);
    throw new UserError(`${path}: empty file${compression === 'none' ? '' : ` (after ${compression} decompression)`}; nothing to analyze (check the path, or that the server has written its log yet)`);
  }
  return {
    close,
    input: { path, stream: plain.stream(), size: compression === 'none' ? size : undefined, head },
    compression,
    rawSize: size,
    warnings,
  };
}

function pickSource(input: SourceInput & { head: Buffer }): Source {
  let best: Source | undefined;
  let bestScore = 0;
  for (const s of sources) {
    const score = s.detect(input.head, input.path);
    if (score > bestScore) {
      best = s;
      bestScore = score;
    }
  }
  if (!best) {
    throw new UserError(
      `${input.path}: unknown format (expected a leakscope trace, APR pool-debug log, nginx debug log, Valgrind XML or heaptrack trace); use --from NAME to force`,
    );
  }
  return best;
}

function forcedSource(name: string): Source {
  const s = sourceByName(name);
  if (!s) throw new UserError(`unknown input format "${name}" for --from (known: ${sources.map((x) => x.name).join(', ')})`);
  return s;
}

function mergeMeta(acc: TraceMeta, next: TraceMeta, firstPath: string, path: string): TraceMeta {
  if (acc.clock !== next.clock) {
    throw new UserError(
      `${path}: its times are ${clockName(next.clock)} but ${firstPath}'s are ${clockName(acc.clock)}; read these files separately`,
    );
  }
  const merged: TraceMeta = { ...acc };
  if (next.source !== acc.source && !acc.source.split('+').includes(next.source)) merged.source = `${acc.source}+${next.source}`;
  if (acc.sampleBytes !== next.sampleBytes) merged.sampleBytes = Math.max(acc.sampleBytes ?? 0, next.sampleBytes ?? 0) || undefined;
  if (next.startWallMs !== undefined && (acc.startWallMs === undefined)) merged.startWallMs = next.startWallMs;
  return merged;
}

function clockName(c: TraceMeta['clock']): string {
  return c === 'ns' ? 'nanoseconds' : 'event sequence numbers';
}

/**
 * Puts each file's times on the first file's timeline: for 'ns' clocks by the difference of
 * their wall-clock starts; for 'seq' clocks after the last sequence number seen so far.
 * Frame and stack definitions (t = 0) are left alone. Events with values out of range (limits.ts)
 * are dropped here, for every source at once, and counted per file.
 */
class TimePlacer implements EventSink {
  protected shift = 0;
  protected maxT = 0;
  private first = true;
  /** Events of the current file dropped for a value out of range, and the first reason. */
  dropped = 0;
  droppedWhy = '';

  constructor(private readonly sink: EventSink) {}

  startFile(fileMeta: TraceMeta, merged: TraceMeta): void {
    this.dropped = 0;
    this.droppedWhy = '';
    if (this.first) {
      this.first = false;
      this.shift = 0;
    } else if (fileMeta.clock === 'seq') {
      this.shift = this.maxT + 1;
    } else if (fileMeta.startWallMs !== undefined && merged.startWallMs !== undefined) {
      this.shift = Math.round((fileMeta.startWallMs - merged.startWallMs) * 1e6);
    } else {
      this.shift = 0;
    }
  }

  /** The damage warning for the current file's dropped events, if any. */
  droppedWarning(path: string): string | undefined {
    if (this.dropped === 0) return undefined;
    return `${path}: ${this.dropped.toLocaleString('en')} record(s) with values out of range dropped (first: ${this.droppedWhy}); sizes above 1 PiB, ids beyond a pid_t, numbers beyond 2^53 are no real process's`;
  }

  protected drop(kind: string, why: string): void {
    if (this.dropped++ === 0) this.droppedWhy = `${kind} with ${why}`;
  }

  event(e: Event): void {
    if (this.shift !== 0 && e.kind !== 'frame' && e.kind !== 'stack') e.t += this.shift;
    const bad = outOfRange(e);
    if (bad !== undefined) return this.drop(e.kind, bad);
    if (e.t > this.maxT) this.maxT = e.t;
    this.sink.event(e);
  }
}

/** The same for a sink with a fast path (the engine): keeps it fast through the placer. */
class FastTimePlacer extends TimePlacer implements FastEventSink {
  /** Only when the sink has it: a source falls back to alloc + free otherwise. */
  readonly transient?: FastEventSink['transient'];

  constructor(private readonly fast: FastEventSink) {
    super(fast);
    const transient = fast.transient;
    if (transient) {
      this.transient = (pid, tid, t, size, stack, count) => {
        const u = t + this.shift;
        const bad = fastOutOfRange(pid, tid, u, 0, 0, size, stack);
        if (bad !== undefined) return this.drop('alloc', bad);
        transient.call(fast, pid, tid, this.place(u), size, stack, count);
      };
    }
  }

  private place(u: number): number {
    if (u > this.maxT) this.maxT = u;
    return u;
  }

  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, tid, u, addr, 0, size, stack);
    if (bad !== undefined) return this.drop('alloc', bad);
    this.fast.alloc(pid, tid, this.place(u), addr, size, stack);
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, tid, u, addr, 0, 0, 0);
    if (bad !== undefined) return this.drop('free', bad);
    this.fast.free(pid, tid, this.place(u), addr);
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, tid, u, oldAddr, addr, size, stack);
    if (bad !== undefined) return this.drop('realloc', bad);
    this.fast.realloc(pid, tid, this.place(u), oldAddr, addr, size, stack);
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, tid, u, pool, addr, size, stack);
    if (bad !== undefined) return this.drop('pool-alloc', bad);
    this.fast.poolAlloc(pid, tid, this.place(u), pool, size, addr, stack);
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, tid, u, pool, parent, 0, stack);
    if (bad !== undefined) return this.drop('pool-create', bad);
    this.fast.poolCreate(pid, tid, this.place(u), pool, parent, poolKind, tag, stack);
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    const u = t + this.shift;
    const bad = fastOutOfRange(pid, 0, u, pool, 0, 0, stack);
    if (bad !== undefined) return this.drop('pool-destroy', bad);
    this.fast.poolDestroy(pid, this.place(u), pool, stack);
  }
}

async function* counted(src: AsyncIterable<Buffer>, onBytes?: (n: number) => void): AsyncIterable<Buffer> {
  for await (const b of src) {
    onBytes?.(b.length);
    yield b;
  }
}

/** Lets the first bytes of a stream be looked at, then replays them ahead of the rest. */
function peekable(src: AsyncIterable<Buffer>) {
  const it = src[Symbol.asyncIterator]();
  const held: Buffer[] = [];
  let heldBytes = 0;
  let done = false;
  return {
    async peek(n: number): Promise<Buffer> {
      while (heldBytes < n && !done) {
        const r = await it.next();
        if (r.done) done = true;
        else if (r.value.length) {
          held.push(r.value);
          heldBytes += r.value.length;
        }
      }
      const all = Buffer.concat(held);
      return all.subarray(0, Math.min(n, all.length));
    },
    /** Stops the source early (runs its cleanup); a finished one is left alone. */
    async close(): Promise<void> {
      if (done) return;
      done = true;
      try {
        await it.return?.();
      } catch {
        // the source's own error was (or will be) reported by its reader
      }
    },
    async *stream(): AsyncIterable<Buffer> {
      while (held.length) yield held.shift()!;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    },
  };
}
