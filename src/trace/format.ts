// The `.lstrace` format (docs/trace-format.md): the framing constants and the one table of
// records. A record's code, name and fields are listed here and nowhere else: the decoder, the
// encoder and the symbol scanner's skipping decoder are generated from RECORDS (codec.ts), and
// test/trace/c-side.test.ts checks the C recorder's record codes (native/recorder/src/lk.h) and
// varint encoders (enc.h) against it.
//
// A new record: a row here (the code, the C name, the event kind of src/model/events.ts, its
// fields in wire order), its event in the model, its line in docs/trace-format.md.

import type { EventKind, FastEventSink } from '../model/events.js';

export const FORMAT_VERSION = 1;

/** `LSTRACE1` */
export const FILE_MAGIC = Buffer.from('LSTRACE1', 'latin1');
/** `LSCK` read as a little-endian u32. */
export const CHUNK_MAGIC_U32 = 0x4b43534c;
export const CHUNK_MAGIC = Buffer.from('LSCK', 'latin1');
export const CHUNK_HEADER_BYTES = 12;
/** Largest payload a reader accepts (and a writer may produce). */
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/** Largest metadata JSON a reader accepts. */
export const MAX_META = 1024 * 1024;

/**
 * How a field is written:
 * - `uv`: unsigned LEB128 varint (readers take values up to 2^53 exactly);
 * - `sv`: zigzag svarint;
 * - `str`: varint byte length, then UTF-8;
 * - a list of names: one byte, the index of the event's value in the list.
 */
export type FieldType = 'uv' | 'sv' | 'str' | readonly string[];

export interface FieldDef {
  readonly name: string;
  readonly type: FieldType;
  /** The field belongs to the event's `frame` object (FRAME records), not to the event itself. */
  readonly in?: 'frame';
  /** A `uv` of bit flags instead of a value: each name is set by its bit. A name that is another
   *  field of the record says that field follows (it is written only when it is defined); any
   *  other name is a boolean of the event. */
  readonly bits?: Readonly<Record<string, number>>;
  /** Decoding: a string that repeats record after record (a pool's kind and tag) is compared
   *  with the last one of the same cache instead of being decoded again. */
  readonly cache?: 'kind' | 'tag';
}

export interface RecordDef {
  readonly code: number;
  /** The name of the record in docs/trace-format.md and, as R_<name>, in the C recorder. */
  readonly name: string;
  /** The event it carries; CTX carries none (it sets the pid and tid of the records after it). */
  readonly kind?: EventKind;
  /** An event record: a `dt` svarint follows the type byte and moves the chunk's running time.
   *  Definitions (FRAME, STACK) have no time: their events have t = 0. */
  readonly timed: boolean;
  /** The event has a `tid` (from the last CTX); others take only the pid. */
  readonly thread: boolean;
  /** The fields after the type byte (and the dt), in wire order. */
  readonly fields: readonly FieldDef[];
  /** For the commonest records: the FastEventSink method the decoder calls instead of building
   *  an Event object, and its arguments by name (pid, tid, t or a field). */
  readonly fast?: readonly [keyof FastEventSink, ...string[]];
}

const uv = (name: string): FieldDef => ({ name, type: 'uv' });
const sv = (name: string): FieldDef => ({ name, type: 'sv' });
const str = (name: string, cache?: 'kind' | 'tag'): FieldDef => (cache ? { name, type: 'str', cache } : { name, type: 'str' });
const event = (code: number, name: string, kind: EventKind, thread: boolean, fields: FieldDef[], fast?: RecordDef['fast']): RecordDef =>
  ({ code, name, kind, timed: true, thread, fields, ...(fast ? { fast } : {}) });

export const RECORDS: readonly RecordDef[] = [
  { code: 0x01, name: 'CTX', timed: false, thread: false, fields: [uv('pid'), uv('tid')] },
  event(0x02, 'PROCESS', 'process', false, [uv('ppid'), str('command'), str('exe')]),
  event(0x03, 'FORK', 'fork', false, [uv('parentPid')]),
  event(0x04, 'EXEC', 'exec', false, [str('exe'), str('command')]),
  event(0x05, 'EXIT', 'exit', false, [sv('code')]),
  event(0x10, 'ALLOC', 'alloc', true, [uv('addr'), uv('size'), uv('stack')], ['alloc', 'pid', 'tid', 't', 'addr', 'size', 'stack']),
  event(0x11, 'FREE', 'free', true, [uv('addr')], ['free', 'pid', 'tid', 't', 'addr']),
  event(0x12, 'REALLOC', 'realloc', true, [uv('oldAddr'), uv('addr'), uv('size'), uv('stack')],
    ['realloc', 'pid', 'tid', 't', 'oldAddr', 'addr', 'size', 'stack']),
  event(0x20, 'POOL_CREATE', 'pool-create', true, [uv('pool'), uv('parent'), uv('stack'), str('poolKind', 'kind'), str('tag', 'tag')],
    ['poolCreate', 'pid', 'tid', 't', 'pool', 'parent', 'poolKind', 'tag', 'stack']),
  event(0x21, 'POOL_DESTROY', 'pool-destroy', false, [uv('pool'), uv('stack')], ['poolDestroy', 'pid', 't', 'pool', 'stack']),
  event(0x22, 'POOL_CLEAR', 'pool-clear', false, [uv('pool'), uv('stack')]),
  event(0x23, 'POOL_ALLOC', 'pool-alloc', true, [uv('pool'), uv('size'), uv('addr'), uv('stack')],
    ['poolAlloc', 'pid', 'tid', 't', 'pool', 'size', 'addr', 'stack']),
  event(0x24, 'POOL_FREE', 'pool-free', false, [uv('pool'), uv('addr')]),
  event(0x25, 'POOL_TAG', 'pool-tag', false, [uv('pool'), str('tag', 'tag')]),
  event(0x26, 'POOL_CLEANUP', 'pool-cleanup', false, [uv('pool'), { name: 'action', type: ['add', 'run'] }, uv('handler')]),
  event(0x27, 'POOL_SIZE', 'pool-size', false, [uv('pool'), uv('bytes')]),
  event(0x28, 'POOL_FOUND', 'pool-found', false, [uv('pool'), uv('parent'), str('poolKind', 'kind'), str('tag', 'tag')]),
  event(0x30, 'MMAP', 'mmap', true, [uv('addr'), uv('size'), uv('prot'), uv('flags'), uv('stack')]),
  event(0x31, 'MUNMAP', 'munmap', false, [uv('addr'), uv('size')]),
  event(0x32, 'BRK', 'brk', false, [uv('addr')]),
  event(0x33, 'SHM', 'shm', false, [{ name: 'op', type: ['get', 'attach', 'detach', 'remove'] }, uv('id'), uv('addr'), uv('size')]),
  event(0x34, 'RSS', 'rss', false, [uv('bytes')]),
  event(0x35, 'KERNEL', 'kernel', false, [str('what'), sv('value')]),
  event(0x40, 'MARKER', 'marker', false, [str('label')]),
  event(0x41, 'LOST', 'lost', false, [uv('count'), str('reason')]),
  event(0x50, 'MODULE', 'module', false, [uv('base'), uv('size'), uv('offset'), str('path'), str('buildId')]),
  {
    code: 0x60, name: 'FRAME', kind: 'frame', timed: false, thread: false,
    fields: [
      uv('id'),
      { name: 'pc', type: 'uv', in: 'frame' },
      { name: 'module', type: 'str', in: 'frame' },
      { name: 'fn', type: 'str', in: 'frame' },
      { name: 'file', type: 'str', in: 'frame' },
      { name: 'line', type: 'uv', in: 'frame' },
      // vaddr: the address in the module's ELF file, set by the symbolizer for a frame it could not name.
      { name: 'flags', type: 'uv', in: 'frame', bits: { inlined: 1, vaddr: 2 } },
      { name: 'vaddr', type: 'uv', in: 'frame' },
    ],
  },
  { code: 0x61, name: 'STACK', kind: 'stack', timed: false, thread: false, fields: [uv('id'), uv('parent'), uv('frame')] },
];

/** The record of each code, and the record of each event kind. */
export const RECORD_BY_CODE: ReadonlyMap<number, RecordDef> = new Map(RECORDS.map((r) => [r.code, r]));
export const RECORD_BY_KIND: ReadonlyMap<EventKind, RecordDef> = new Map(RECORDS.filter((r) => r.kind).map((r) => [r.kind!, r]));

/** The CTX record's code, which the encoder writes itself when the pid or tid changes. */
export const CTX = 0x01;
