// fast-check arbitraries for every event kind, within what the format carries exactly:
// times up to 2^50 ns (13 days), addresses up to 2^53, strings of any code point.
import fc from 'fast-check';
import type { Event } from '../../src/model/events.js';

const id = fc.nat({ max: 4_194_304 });
const u53 = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat());
const t = fc.nat({ max: 2 ** 50 });
const s = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary-ascii', minLength: 120, maxLength: 300 }));
const sint = fc.oneof(fc.integer(), fc.integer({ min: -(2 ** 51), max: 2 ** 51 }));

const anyEvent: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('process' as const), pid: id, t, ppid: id, command: s, exe: s }),
  fc.record({ kind: fc.constant('fork' as const), pid: id, t, parentPid: id }),
  fc.record({ kind: fc.constant('exec' as const), pid: id, t, exe: s, command: s }),
  fc.record({ kind: fc.constant('exit' as const), pid: id, t, code: sint }),
  fc.record({ kind: fc.constant('alloc' as const), pid: id, t, tid: id, addr: u53, size: u53, stack: id }),
  fc.record({ kind: fc.constant('free' as const), pid: id, t, tid: id, addr: u53 }),
  fc.record({ kind: fc.constant('realloc' as const), pid: id, t, tid: id, oldAddr: u53, addr: u53, size: u53, stack: id }),
  fc.record({ kind: fc.constant('pool-create' as const), pid: id, t, tid: id, pool: u53, parent: u53, poolKind: s, tag: s, stack: id }),
  fc.record({ kind: fc.constant('pool-destroy' as const), pid: id, t, pool: u53, stack: id }),
  fc.record({ kind: fc.constant('pool-clear' as const), pid: id, t, pool: u53, stack: id }),
  fc.record({ kind: fc.constant('pool-alloc' as const), pid: id, t, tid: id, pool: u53, size: u53, addr: u53, stack: id }),
  fc.record({ kind: fc.constant('pool-free' as const), pid: id, t, pool: u53, addr: u53 }),
  fc.record({ kind: fc.constant('pool-tag' as const), pid: id, t, pool: u53, tag: s }),
  fc.record({ kind: fc.constant('pool-cleanup' as const), pid: id, t, pool: u53, action: fc.constantFrom('add' as const, 'run' as const), handler: u53 }),
  fc.record({ kind: fc.constant('pool-size' as const), pid: id, t, pool: u53, bytes: u53 }),
  fc.record({ kind: fc.constant('mmap' as const), pid: id, t, tid: id, addr: u53, size: u53, prot: fc.nat(7), flags: fc.nat(0xfffff), stack: id }),
  fc.record({ kind: fc.constant('munmap' as const), pid: id, t, addr: u53, size: u53 }),
  fc.record({ kind: fc.constant('brk' as const), pid: id, t, addr: u53 }),
  fc.record({ kind: fc.constant('shm' as const), pid: id, t, op: fc.constantFrom('get' as const, 'attach' as const, 'detach' as const, 'remove' as const), id, addr: u53, size: u53 }),
  fc.record({ kind: fc.constant('rss' as const), pid: id, t, bytes: u53 }),
  fc.record({ kind: fc.constant('kernel' as const), pid: id, t, what: s, value: sint }),
  fc.record({ kind: fc.constant('marker' as const), pid: id, t, label: s }),
  fc.record({ kind: fc.constant('lost' as const), pid: id, t, count: u53, reason: s }),
  fc.record({ kind: fc.constant('module' as const), pid: id, t, base: u53, size: u53, offset: u53, path: s, buildId: s }),
  fc.record({
    kind: fc.constant('frame' as const), pid: id, t: fc.constant(0), id,
    frame: fc.record({ pc: u53, module: s, fn: s, file: s, line: fc.nat(), inlined: fc.boolean(), vaddr: u53 }, { noNullPrototype: true, requiredKeys: ['pc', 'module', 'fn', 'file', 'line', 'inlined'] }),
  }),
  fc.record({ kind: fc.constant('stack' as const), pid: id, t: fc.constant(0), id, parent: id, frame: id }),
);

/** Plain objects, as sources build them. */
export const eventArb: fc.Arbitrary<Event> = anyEvent.map((e) => ({ ...e }) as Event);

/** Sequences where consecutive events often share a process and thread, as real traces do. */
export const eventsArb = fc.array(eventArb, { maxLength: 300 });
