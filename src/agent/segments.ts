// Rolling trace segments (segments: in the config), for post-mortems: what the events-mode
// targets report goes into a .lstrace file that is closed and replaced every `every`; files past
// `maxAge`, and the oldest ones while the directory holds more than `maxBytes`, are deleted.
// Each segment stands alone — it starts with the live processes, their modules, frames and
// stacks and their live pools as they are at its start — and is symbolized once closed, so
// `leakscope report SEGMENT` reads it like an `attach -o` trace.

import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Event, EventSink } from '../model/events.js';
import { TraceWriter } from '../trace/writer.js';
import { symbolizeTrace } from '../symbols/symbolize.js';
import type { SegmentsConfig } from './config.js';
import type { Log } from './log.js';
import type { ProcModel, TargetModel } from './model.js';
import type { TargetWatch } from './watch.js';

const NAME_RE = /^agent-\d{8}T\d{6}(-\d+)?\.lstrace$/;

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

export class Segments {
  private writer: TraceWriter | undefined;
  private path = '';
  private timer: NodeJS.Timeout | undefined;
  private watches: TargetWatch[] = [];
  private finishing: Promise<unknown> = Promise.resolve();
  /** Segments written (closed) so far. */
  closed = 0;

  constructor(private readonly cfg: SegmentsConfig, private readonly startMono: bigint, private readonly startWallMs: number, private readonly log: Log) {
    try {
      mkdirSync(cfg.dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw new Error(`segments.dir ${cfg.dir}: cannot create it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  }

  /** What a target's session writes into the current segment. */
  sinkFor(_w: TargetWatch): EventSink {
    return { event: (e: Event) => this.writer?.event(e) };
  }

  start(watches: TargetWatch[]): void {
    this.watches = watches;
    this.open();
    this.timer = setInterval(() => this.rotate(), this.cfg.everyMs);
  }

  private now(): number {
    return Number(process.hrtime.bigint() - this.startMono);
  }

  private open(): void {
    let path = join(this.cfg.dir, `agent-${stamp(new Date())}.lstrace`);
    for (let i = 1; existsQuiet(path); i++) path = join(this.cfg.dir, `agent-${stamp(new Date())}-${i}.lstrace`);
    this.path = path;
    this.writer = TraceWriter.create(path, {
      format: 1, clock: 'ns', startWallMs: this.startWallMs, startMonoNs: this.startMono.toString(), source: 'attach',
      command: `leakscope agent (${this.watches.map((w) => w.name).join(', ')})`, hostname: hostname(),
    });
    const t = this.now();
    for (const w of this.watches) if (w.mode === 'events' || w.mode === 'walk') preamble(w.model, this.writer, t);
  }

  /** Closes the current segment and opens the next (also when a target switched mode: a segment
   *  then never holds two sessions' pools for one target). */
  rotate(): void {
    const w = this.writer;
    const path = this.path;
    this.writer = undefined;
    this.open();
    if (w) {
      this.finishing = this.finishing.then(async () => {
        await w.close();
        this.closed++;
        await symbolizeTrace(path).catch((err: unknown) => this.log.warn(`segment ${path}: not symbolized: ${(err as Error).message}`));
        this.retain();
      });
    }
  }

  /** Deletes segments past the age, then the oldest while over the size (never the open one). */
  retain(): void {
    let files: { path: string; bytes: number; mtime: number }[];
    try {
      files = readdirSync(this.cfg.dir).filter((n) => NAME_RE.test(n)).sort().map((n) => {
        const st = statSync(join(this.cfg.dir, n));
        return { path: join(this.cfg.dir, n), bytes: st.size, mtime: st.mtimeMs };
      });
    } catch {
      return;
    }
    files = files.filter((f) => f.path !== this.path);
    const now = Date.now();
    let total = files.reduce((s, f) => s + f.bytes, 0);
    for (const f of files) {
      if (now - f.mtime > this.cfg.maxAgeMs || total > this.cfg.maxBytes) {
        rmSync(f.path, { force: true });
        total -= f.bytes;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const w = this.writer;
    this.writer = undefined;
    await this.finishing;
    if (w) {
      await w.close();
      this.closed++;
      await symbolizeTrace(this.path).catch(() => undefined);
      this.retain();
    }
  }
}

function existsQuiet(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The target's live state as events: processes (forks from a live parent), their modules,
 *  frames and stacks, then their live pools and blocks. */
export function preamble(model: TargetModel, out: EventSink, t: number): void {
  const done = new Set<number>();
  const emit = (p: ProcModel): void => {
    if (done.has(p.pid)) return;
    done.add(p.pid);
    const parent = p.tracedParent ? model.procs.get(p.tracedParent) : undefined;
    if (parent) {
      emit(parent);
      out.event({ kind: 'fork', pid: p.pid, t, parentPid: parent.pid });
    }
    out.event({ kind: 'process', pid: p.pid, t, ppid: p.ppid, command: p.command, exe: p.exe });
    for (const m of p.modules.values()) out.event({ ...m, t });
    for (const [id, f] of p.frames) if (f) out.event({ kind: 'frame', pid: p.pid, t: 0, id, frame: f.frame });
    for (const [id, d] of p.stackDefs) out.event({ kind: 'stack', pid: p.pid, t: 0, id, parent: d.parent, frame: d.frame });
  };
  for (const p of model.procs.values()) emit(p);
  for (const p of model.procs.values()) {
    for (const [pool, lp] of p.pools) {
      if (lp.found) out.event({ kind: 'pool-found', pid: p.pid, t, pool, parent: lp.parent, poolKind: lp.kind, tag: lp.tag });
      else out.event({ kind: 'pool-create', pid: p.pid, t, tid: p.pid, pool, parent: lp.parent, poolKind: lp.kind, tag: lp.tag, stack: lp.sid });
      if (lp.bytes > 0) out.event({ kind: 'pool-size', pid: p.pid, t, pool, bytes: lp.bytes });
    }
    for (const [addr, b] of p.blocks) out.event({ kind: 'alloc', pid: p.pid, t, tid: p.pid, addr, size: b.size, stack: b.sid });
  }
}
