// pprof heap profile (gzip'd profile.proto), as `go tool pprof` reads one: sample types
// alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes; period type
// space/bytes; locations leaf first; each sample labelled with its pid.

import { gzipSync } from 'node:zlib';
import { Function as PFunction, Label, Line, Location, Mapping, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { Frame, TraceMeta } from '../../model/events.js';
import type { WindowState } from '../../analyses/window.js';
import { exportStacks, frameName } from './stacks.js';

export interface PprofOptions {
  meta?: TraceMeta;
  inputs?: string[];
}

export function pprofProfile(w: WindowState, opts: PprofOptions = {}): Profile {
  const st = new StringTable(); // string_table[0] is ""
  const s = (x: string) => st.dedup(x);
  const mappings = new Map<string, Mapping>();
  const functions = new Map<string, PFunction>();
  const locations = new Map<string, Location>();

  const mappingId = (module: string): number => {
    if (!module) return 0;
    let m = mappings.get(module);
    if (!m) {
      m = new Mapping({ id: mappings.size + 1, filename: s(module), hasFunctions: true });
      mappings.set(module, m);
    }
    return Number(m.id);
  };
  const functionId = (f: Frame): number => {
    const name = frameName(f);
    const key = `${name}\u0000${f.file}`;
    let fn = functions.get(key);
    if (!fn) {
      fn = new PFunction({ id: functions.size + 1, name: s(name), systemName: s(name), filename: s(f.file) });
      functions.set(key, fn);
    }
    return Number(fn.id);
  };
  const locationId = (f: Frame): number => {
    const key = `${f.pc}\u0000${f.module}\u0000${f.fn}\u0000${f.file}\u0000${f.line}`;
    let loc = locations.get(key);
    if (!loc) {
      loc = new Location({
        id: locations.size + 1,
        mappingId: mappingId(f.module),
        address: f.pc,
        line: [new Line({ functionId: functionId(f), line: f.line })],
      });
      locations.set(key, loc);
    }
    return Number(loc.id);
  };

  const sampleType = [
    new ValueType({ type: s('alloc_objects'), unit: s('count') }),
    new ValueType({ type: s('alloc_space'), unit: s('bytes') }),
    new ValueType({ type: s('inuse_objects'), unit: s('count') }),
    new ValueType({ type: s('inuse_space'), unit: s('bytes') }),
  ];
  const pidKey = s('pid');
  const samples: Sample[] = [];
  for (const x of exportStacks(w)) {
    if (x.allocCount === 0 && x.inuseCount === 0) continue;
    const frames = x.frames.length ? x.frames : [{ pc: 0, module: '', fn: '(no stack)', file: '', line: 0, inlined: false }];
    samples.push(new Sample({
      locationId: frames.map(locationId),
      value: [x.allocCount, x.allocBytes, x.inuseCount, x.inuseBytes].map(Math.round),
      label: [new Label({ key: pidKey, num: x.pid })],
    }));
  }
  const meta = opts.meta;
  const comment = [s(`leakscope heap profile of ${(opts.inputs ?? []).join(', ') || 'a trace'}`)];
  if (meta?.clock === 'seq') comment.push(s('the source has no clock: times are event numbers'));
  if (meta?.sampleBytes) comment.push(s(`allocations sampled with mean ${meta.sampleBytes} bytes; values are unbiased estimates`));
  return new Profile({
    sampleType,
    sample: samples,
    mapping: [...mappings.values()],
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: st,
    timeNanos: meta?.startWallMs ? BigInt(Math.round(meta.startWallMs)) * 1_000_000n : 0,
    durationNanos: meta?.clock === 'ns' ? Math.round(w.lastT) : 0,
    periodType: new ValueType({ type: s('space'), unit: s('bytes') }),
    period: meta?.sampleBytes ?? 1,
    comment,
    defaultSampleType: s('inuse_space'),
  });
}

export function pprofBytes(w: WindowState, opts: PprofOptions = {}): Buffer {
  return gzipSync(pprofProfile(w, opts).encode());
}
