// Test helper: runs a source over a file or a string and keeps its events, with stacks resolved.
import { createReadStream, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Event, Frame } from '../../src/model/events.js';
import type { Source, SourceStats } from '../../src/sources/source.js';

export interface Collected {
  events: Event[];
  stats: SourceStats;
  /** Frames of a stack, leaf first. */
  frames(pid: number, stack: number): Frame[];
}

export function fixture(name: string): string {
  return new URL(`../fixtures/${name}`, import.meta.url).pathname;
}

/** Decompressed text of a .gz fixture. */
export function fixtureText(name: string): Buffer {
  const raw = readFileSync(fixture(name));
  return name.endsWith('.gz') ? gunzipSync(raw) : raw;
}

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

export async function collect(source: Source, input: Buffer | string, chunkSize = 65536): Promise<Collected> {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const events: Event[] = [];
  const stats = await source.read({ path: 'test-input', stream: chunks(buf, chunkSize), head: buf.subarray(0, 65536) }, { event: (e) => events.push(e) });
  return withFrames(events, stats);
}

export async function collectFile(source: Source, path: string): Promise<Collected> {
  const events: Event[] = [];
  const stats = await source.read({ path, stream: createReadStream(path) }, { event: (e) => events.push(e) });
  return withFrames(events, stats);
}

function withFrames(events: Event[], stats: SourceStats): Collected {
  const frames = new Map<string, Frame>();
  const stacks = new Map<string, { parent: number; frame: number }>();
  for (const e of events) {
    if (e.kind === 'frame') frames.set(`${e.pid}:${e.id}`, e.frame);
    else if (e.kind === 'stack') stacks.set(`${e.pid}:${e.id}`, { parent: e.parent, frame: e.frame });
  }
  return {
    events,
    stats,
    frames(pid: number, stack: number): Frame[] {
      const out: Frame[] = [];
      while (stack) {
        const s = stacks.get(`${pid}:${stack}`);
        if (!s) throw new Error(`stack ${stack} of pid ${pid} used before its definition`);
        out.push(frames.get(`${pid}:${s.frame}`)!);
        stack = s.parent;
      }
      return out;
    },
  };
}
