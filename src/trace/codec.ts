// The record codec, generated from the record table (format.ts) when this module loads.
//
// Decoding is the hot path of every analysis, so the decoder is not an interpreter of the table:
// the table is compiled into one JavaScript function per use (new Function), a switch with a
// case per record whose fields are read inline into locals (a varint of one byte costs a load and
// a compare), as a hand-written decoder would be. Three decoders are made: into Event objects,
// into a sink's fast path (direct calls for the commonest records, model/events.ts), and the
// symbol scanner's, which builds only definition events and steps over every other record.
// The encoder is compiled the same way into calls of the writer's primitives (writer.ts).
// The generated source holds nothing but the table's names and numbers (never input); a
// reader can print it: decoderSource(), encoderSource().

import type { Event, EventKind, EventSink, FastEventSink } from '../model/events.js';
import { fastSink } from '../model/events.js';
import { RECORDS } from './format.js';
import type { FieldDef, RecordDef } from './format.js';

export interface ChunkResult {
  events: number;
  /** Why the rest of the chunk could not be decoded, or undefined when it all was. */
  error?: string;
}

/** Decodes one chunk payload (exactly its P bytes) into `sink`. Events decoded before a
 *  malformed record are kept; the rest of the chunk is not. */
export type ChunkDecoder = (payload: Buffer, sink: EventSink) => ChunkResult;

// --- what generated code calls --------------------------------------------------------------

/** Where uvLong() stopped (a varint's end is its second result). */
const next = { pos: 0 };

/** A varint whose first byte (at p) has the continuation bit set; sets next.pos past it. */
function uvLong(u: Uint8Array, p: number): number {
  let b = u[p++]!;
  let v = b & 0x7f;
  b = u[p++]!;
  v |= (b & 0x7f) << 7;
  if (b < 0x80) return (next.pos = p), v;
  b = u[p++]!;
  v |= (b & 0x7f) << 14;
  if (b < 0x80) return (next.pos = p), v;
  b = u[p++]!;
  v |= (b & 0x7f) << 21;
  if (b < 0x80) return (next.pos = p), v;
  // Bytes 5 to 7 (up to 49 bits: a user-space address): gathered in a second int, one multiply.
  const p4 = p;
  b = u[p++]!;
  let h = b & 0x7f;
  if (b < 0x80) return (next.pos = p), v + h * 268435456;
  b = u[p++]!;
  h |= (b & 0x7f) << 7;
  if (b < 0x80) return (next.pos = p), v + h * 268435456;
  b = u[p++]!;
  h |= (b & 0x7f) << 14;
  if (b < 0x80) return (next.pos = p), v + h * 268435456;
  // Longer: continue in floating point (exact to 2^53), as bitwise operators would overflow.
  p = p4;
  let mul = 268435456;
  for (let i = 0; i < 6; i++) {
    b = u[p++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return (next.pos = p), v;
    mul *= 128;
  }
  next.pos = Number.MAX_SAFE_INTEGER; // more than 10 bytes: malformed (the record runs past the chunk)
  return 0;
}

/** Strings that repeat record after record (a pool's kind and tag): the last one of each cache is
 *  kept with its bytes, and a repeat is compared, not decoded again. */
const SMALL = 32;
class StrCache {
  bytes = new Uint8Array(SMALL);
  len = -1;
  value = '';
}

function cached(u: Buffer, start: number, n: number, c: StrCache): string {
  if (n > SMALL) return u.toString('utf8', start, start + n);
  const b = c.bytes;
  if (n === c.len) {
    let k = 0;
    while (k < n && b[k] === u[start + k]) k++;
    if (k === n) return c.value;
  }
  for (let k = 0; k < n; k++) b[k] = u[start + k]!;
  c.len = n;
  c.value = u.toString('utf8', start, start + n);
  return c.value;
}

const overrun = (events: number, at: number): ChunkResult => ({ events, error: `record at payload byte ${at} runs past the chunk` });
const unknown = (events: number, type: number, at: number): ChunkResult =>
  ({ events, error: `unknown record type 0x${type.toString(16).padStart(2, '0')} at payload byte ${at}` });
const bad = (events: number, what: string, value: number, at: number): ChunkResult => ({ events, error: `bad ${what} ${value} at payload byte ${at}` });

// --- generation ------------------------------------------------------------------------------

/** The field named `name` is written only when a flags field's bit says so: that bit, if any. */
function presenceBit(r: RecordDef, name: string): { flags: string; bit: number } | undefined {
  for (const f of r.fields) {
    const bit = f.bits?.[name];
    if (bit !== undefined && r.fields.some((g) => g.name === name)) return { flags: f.name, bit };
  }
  return undefined;
}

const local = (name: string) => `f_${name}`;

/** Reads a varint at `pos` into the variable `v` (declared by the caller). */
const readUv = (v: string) => `${v} = u[pos]; if (${v} < 128) pos++; else { ${v} = uvLong(u, pos); pos = next.pos; }`;
/** The largest time step a record may carry (the writer's limit). */
const MAX_STEP = 2 ** 52;
/** Zigzag decoding of the varint in z. */
const unzig = '(z < 4294967296 ? ((z >>> 1) ^ -(z & 1)) : (z % 2 === 0 ? z / 2 : -(z + 1) / 2))';

interface GenContext {
  enums: (readonly string[])[];
}

/** Code reading one field into its local (or stepping over it when `skip`). */
function readField(r: RecordDef, f: FieldDef, ctx: GenContext, skip: boolean): string {
  const v = local(f.name);
  const t = f.type;
  if (Array.isArray(t)) {
    if (skip) return 'pos++;';
    // undefined past the end compares false: the overrun check after the record says so.
    const i = ctx.enums.push(t) - 1;
    return `const ${v}_i = u[pos++]; if (${v}_i >= ${t.length}) return bad(events, ${JSON.stringify(`${r.kind} ${f.name}`)}, ${v}_i, at); const ${v} = E${i}[${v}_i];`;
  }
  if (t === 'uv') {
    if (skip && !f.bits) return 'while (u[pos++] & 128);';
    return `let ${v}; ${readUv(v)}`;
  }
  if (t === 'sv') return skip ? 'while (u[pos++] & 128);' : `${readUv('z')} const ${v} = ${unzig};`;
  // A string: its byte length, then the bytes (an empty string past the end: the overrun check says so).
  if (skip) return `${readUv('n')} pos += n;`;
  const value = f.cache ? `cached(u, start, n, C_${f.cache})` : `u.toString('utf8', start, pos)`;
  return `${readUv('n')} start = pos; pos += n; const ${v} = n === 0 || pos > end ? '' : ${value};`;
}

/** Code reading all of a record's fields (conditional ones under their flag). */
function readFields(r: RecordDef, ctx: GenContext, skip: boolean): string {
  const out: string[] = [];
  for (const f of r.fields) {
    const when = presenceBit(r, f.name);
    if (when) {
      if (f.type !== 'uv') throw new Error(`${r.name}.${f.name}: only a varint can be conditional`);
      out.push(skip
        ? `if (${local(when.flags)} & ${when.bit}) while (u[pos++] & 128);`
        : `let ${local(f.name)} = 0; if (${local(when.flags)} & ${when.bit}) { ${readUv(local(f.name))} }`);
    } else {
      out.push(readField(r, f, ctx, skip));
    }
  }
  return out.join('\n        ');
}

/** The value of a name in a record's event: the context, or a field. */
function argument(r: RecordDef, name: string): string {
  if (name === 'pid' || name === 'tid' || name === 't') return name;
  if (!r.fields.some((f) => f.name === name)) throw new Error(`${r.name}: the fast call names ${name}, not a field`);
  return local(name);
}

/** An object literal of the fields of `r` that live in `where` (the event, or its frame). */
function objectOf(r: RecordDef, where: 'event' | 'frame'): { literal: string; conditional: string[] } {
  const props: string[] = [];
  const conditional: string[] = [];
  let frameAt = -1;
  for (const f of r.fields) {
    const inFrame = f.in === 'frame';
    if (where === 'event' && inFrame) {
      if (frameAt < 0) frameAt = props.push('frame: frame') - 1;
      continue;
    }
    if (where === 'frame' && !inFrame) continue;
    if (f.bits) {
      // Booleans of the event; bits that say a field follows are not properties themselves.
      for (const [name, bit] of Object.entries(f.bits)) {
        if (!r.fields.some((g) => g.name === name)) props.push(`${name}: (${local(f.name)} & ${bit}) === ${bit}`);
      }
      continue;
    }
    const when = presenceBit(r, f.name);
    if (when) conditional.push(`if (${local(when.flags)} & ${when.bit}) ${where === 'frame' ? 'frame' : 'e'}.${f.name} = ${local(f.name)};`);
    else props.push(`${f.name}: ${local(f.name)}`);
  }
  return { literal: `{ ${props.join(', ')} }`, conditional };
}

/** The statements that hand a decoded record to the sink. */
function emit(r: RecordDef, useFast: boolean): string {
  if (useFast && r.fast) {
    const [method, ...args] = r.fast;
    return `fast.${method}(${args.map((a) => argument(r, a)).join(', ')});`;
  }
  const head = [`kind: ${JSON.stringify(r.kind)}`, 'pid: pid', `t: ${r.timed ? 't' : '0'}`, ...(r.thread ? ['tid: tid'] : [])];
  const ev = objectOf(r, 'event');
  const out: string[] = [];
  if (r.fields.some((f) => f.in === 'frame')) {
    const fr = objectOf(r, 'frame');
    out.push(`const frame = ${fr.literal};`, ...fr.conditional);
  }
  const body = ev.literal === '{  }' ? head.join(', ') : `${head.join(', ')}, ${ev.literal.slice(2, -2)}`;
  out.push(`const e = { ${body} };`, ...ev.conditional, 'sink.event(e);');
  return out.join(' ');
}

export interface DecoderOptions {
  /** Call the sink's fast path for the records that have one. */
  fast?: boolean;
  /** Build events of these kinds only; step over the rest (the symbol scanner). */
  only?: readonly EventKind[];
}

/** The decoder's JavaScript source: `function decode(u, sink, fast)`. */
export function decoderSource(opts: DecoderOptions = {}): { source: string; enums: (readonly string[])[] } {
  const ctx: GenContext = { enums: [] };
  const cases: string[] = [];
  for (const r of RECORDS) {
    if (!r.kind) {
      // CTX: the pid and tid of the records after it.
      const [p, q] = r.fields;
      if (r.fields.length !== 2 || p!.name !== 'pid' || q!.name !== 'tid') throw new Error('CTX must be pid, tid');
      cases.push(`case ${r.code}: { // ${r.name}
        ${readUv('pid')}
        ${readUv('tid')}
        if (pos > end) return overrun(events, at);
        continue;
      }`);
      continue;
    }
    const skip = opts.only !== undefined && !opts.only.includes(r.kind);
    // A time step beyond 2^52 (over 52 days in ns) is one the writer cannot carry and no recorder
    // makes: the record is damage, as one running past the chunk is, so that every command,
    // `import` included, reads the same events from such a file.
    const time = r.timed ? `${readUv('z')} z = ${unzig}; if (z > ${MAX_STEP} || z < -${MAX_STEP}) return overrun(events, at); t += z;` : '';
    const tail = skip ? 'continue;' : `${emit(r, opts.fast === true)}\n        events++;\n        continue;`;
    cases.push(`case ${r.code}: { // ${r.name}
        ${time}
        ${readFields(r, ctx, skip)}
        if (pos > end) return overrun(events, at);
        ${tail}
      }`);
  }
  const source = `return function decode(u, sink, fast) {
    const end = u.length;
    let pos = 0, pid = 0, tid = 0, t = 0, events = 0, z = 0, n = 0, start = 0;
    while (pos < end) {
      const at = pos;
      switch (u[pos++]) {
      ${cases.join('\n      ')}
      default:
        return unknown(events, u[at], at);
      }
    }
    return { events };
  };`;
  return { source, enums: ctx.enums };
}

type RawDecoder = (u: Buffer, sink: EventSink, fast: FastEventSink | undefined) => ChunkResult;

function compileDecoder(opts: DecoderOptions): RawDecoder {
  const { source, enums } = decoderSource(opts);
  const names = ['uvLong', 'next', 'cached', 'C_kind', 'C_tag', 'overrun', 'unknown', 'bad', ...enums.map((_, i) => `E${i}`)];
  const make = new Function(...names, source) as (...a: unknown[]) => RawDecoder;
  return make(uvLong, next, cached, new StrCache(), new StrCache(), overrun, unknown, bad, ...enums);
}

const objectDecoder = compileDecoder({});
const fastDecoder = compileDecoder({ fast: true });

/** Decodes a chunk payload into `sink`, through its fast path when it has one. */
export const decodeChunk: ChunkDecoder = (u, sink) => {
  const fast = fastSink(sink);
  return fast ? fastDecoder(u, sink, fast) : objectDecoder(u, sink, undefined);
};

/** A decoder that builds events of the given kinds only and steps over every other record
 *  (several times faster than a full decode when the rest is most of the trace). */
export function decoderOf(kinds: readonly EventKind[]): ChunkDecoder {
  const d = compileDecoder({ only: kinds });
  return (u, sink) => d(u, sink, undefined);
}

// --- encoding ---------------------------------------------------------------------------------

/** The writer's primitives the generated encoder calls (TraceWriter has them). */
export interface RecordWriter {
  /** Makes room for a record holding these strings. */
  reserve(a: string, b?: string, c?: string): void;
  /** A CTX record when the pid or the tid changes. */
  ctx(pid: number, tid: number): void;
  /** A CTX record when the pid changes (events without a thread). */
  ctxPid(pid: number): void;
  /** An event record's type byte and dt. */
  rec(type: number, t: number): void;
  u8(v: number): void;
  uv(v: number): void;
  sv(v: number): void;
  str(s: string): void;
}

/** The encoder's JavaScript source: `function encode(w, e)`. */
export function encoderSource(): { source: string; enums: ReadonlyMap<string, number>[] } {
  const enums: ReadonlyMap<string, number>[] = [];
  const cases: string[] = [];
  for (const r of RECORDS) {
    if (!r.kind) continue;
    const of = (f: FieldDef) => (f.in === 'frame' ? `f.${f.name}` : `e.${f.name}`);
    const pre: string[] = [];
    const body: string[] = [];
    const strings = r.fields.filter((f) => f.type === 'str').map(of);
    if (strings.length > 3) throw new Error(`${r.name}: reserve() takes at most 3 strings`);
    if (r.fields.some((f) => f.in === 'frame')) pre.push('const f = e.frame;');
    for (const f of r.fields) {
      const v = of(f);
      const when = presenceBit(r, f.name);
      if (Array.isArray(f.type)) {
        const i = enums.push(new Map(f.type.map((name, k) => [name, k]))) - 1;
        const msg = `TraceWriter: ${r.kind}.${f.name} must be ${f.type.join('/')}, got `;
        pre.push(`const ${local(f.name)} = E${i}.get(${v}); if (${local(f.name)} === undefined) throw new TypeError(${JSON.stringify(msg)} + String(${v}));`);
        body.push(`w.u8(${local(f.name)});`);
      } else if (f.bits) {
        const parts = Object.entries(f.bits).map(([name, bit]) =>
          r.fields.some((g) => g.name === name) ? `(${of({ ...f, name })} !== undefined ? ${bit} : 0)` : `(${of({ ...f, name })} ? ${bit} : 0)`);
        body.push(`w.uv(${parts.join(' | ')});`);
      } else {
        const put = `w.${f.type}(${v});`;
        body.push(when ? `if (${v} !== undefined) ${put}` : put);
      }
    }
    if (strings.length) pre.push(`w.reserve(${strings.join(', ')});`);
    pre.push(r.thread ? 'w.ctx(e.pid, e.tid);' : 'w.ctxPid(e.pid);');
    pre.push(r.timed ? `w.rec(${r.code}, e.t);` : `w.u8(${r.code});`);
    cases.push(`case ${JSON.stringify(r.kind)}: { // ${r.name}
        ${[...pre, ...body].join('\n        ')}
        return;
      }`);
  }
  const source = `return function encode(w, e) {
    switch (e.kind) {
      ${cases.join('\n      ')}
      default:
        throw new TypeError('TraceWriter: unknown event kind ' + String(e.kind));
    }
  };`;
  return { source, enums };
}

/** Writes one event as its record through the writer's primitives. */
export const encodeEvent: (w: RecordWriter, e: Event) => void = (() => {
  const { source, enums } = encoderSource();
  const make = new Function(...enums.map((_, i) => `E${i}`), source) as (...a: unknown[]) => (w: RecordWriter, e: Event) => void;
  return make(...enums);
})();
