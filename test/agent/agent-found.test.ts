// Pools alive before the agent attached (the session's discovery walk: `pool-found`): the agent's
// model keeps them with their tag and place in the tree, the sampler names their class by the
// tag (or the found site) and counts them as found, a destroy takes their children with them, and
// a trace segment starts with them as found pools again — which the engine reads as such.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/model/events.js';
import { frame } from '../../src/model/events.js';
import { TargetModel } from '../../src/agent/model.js';
import { StackTable } from '../../src/agent/stacks.js';
import { Sampler } from '../../src/agent/sampler.js';
import { preamble } from '../../src/agent/segments.js';
import { FOUND_SITE } from '../../src/analyses/pools.js';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';

const PID = 4242;
const locator = { locate: (_pid: number, pc: number) => ({ path: '/usr/sbin/apache2', fileOffset: pc - 0x400000 }) };

function setUp(): { model: TargetModel; sampler: Sampler; ev: (e: Event) => void } {
  const model = new TargetModel(new StackTable(100), { poolsPerProcess: 100, blocksPerProcess: 100 }, () => 0);
  model.locator = locator;
  const ev = (e: Event) => model.event(e);
  ev({ kind: 'process', pid: PID, t: 0, ppid: 1, command: 'apache2 -k start', exe: '/usr/sbin/apache2' });
  // found alive: pchild (tagged) with an untagged child of its own
  ev({ kind: 'pool-found', pid: PID, t: 1, pool: 0x1000, parent: 0, poolKind: 'apr', tag: 'pchild' });
  ev({ kind: 'pool-found', pid: PID, t: 1, pool: 0x2000, parent: 0x1000, poolKind: 'apr', tag: '' });
  ev({ kind: 'pool-size', pid: PID, t: 1, pool: 0x1000, bytes: 16384 });
  ev({ kind: 'pool-size', pid: PID, t: 1, pool: 0x2000, bytes: 8192 });
  // made while traced, under the found pchild
  ev({ kind: 'frame', pid: PID, t: 0, id: 1, frame: frame({ pc: 0x401000, module: '/usr/sbin/apache2' }) });
  ev({ kind: 'stack', pid: PID, t: 0, id: 1, parent: 0, frame: 1 });
  ev({ kind: 'pool-create', pid: PID, t: 2, tid: PID, pool: 0x3000, parent: 0x1000, poolKind: 'apr', tag: 'request', stack: 1 });
  ev({ kind: 'pool-size', pid: PID, t: 2, pool: 0x3000, bytes: 4096 });
  // found twice (a walk after a fork, say): kept once
  ev({ kind: 'pool-found', pid: PID, t: 3, pool: 0x1000, parent: 0, poolKind: 'apr', tag: 'pchild' });
  return { model, sampler: new Sampler({ points: 16, trackedSeries: 16, topSites: 5, topClasses: 5 }), ev };
}

test('found pools: classes by tag or the found site, counted as found; a destroy takes their children', () => {
  const { model, sampler, ev } = setUp();
  const n = sampler.sample(model, 1);
  const cls = (name: string) => n.classes.find((c) => c.name === name);
  assert.deepEqual({ ...cls('pchild'), verdict: undefined }, { name: 'pchild', kind: 'apr', bytes: 16384, count: 1, found: 1, verdict: undefined });
  assert.deepEqual({ ...cls(FOUND_SITE), verdict: undefined }, { name: FOUND_SITE, kind: 'apr', bytes: 8192, count: 1, found: 1, verdict: undefined });
  assert.deepEqual({ ...cls('request'), verdict: undefined }, { name: 'request', kind: 'apr', bytes: 4096, count: 1, found: 0, verdict: undefined });
  assert.equal(n.processes[0]!.pools, 3);
  assert.equal(n.processes[0]!.poolBytes, 16384 + 8192 + 4096);
  // pchild destroyed (the child exits its loop): its found child and the request pool go too
  ev({ kind: 'pool-destroy', pid: PID, t: 4, pool: 0x1000, stack: 0 });
  assert.equal(model.procs.get(PID)!.pools.size, 0);
});

test('a segment starts with the found pools as found: the engine does not make up their creation', () => {
  const { model } = setUp();
  const engine = new Engine({ meta: { format: 1, clock: 'ns', source: 'agent' } });
  preamble(model, engine, 5);
  const result = analyze(engine.finish());
  const p = result.processes.find((x) => x.pid === PID)!;
  const cls = (name: string) => p.poolClasses.find((c) => c.name === name);
  assert.equal(cls('pchild')?.found, 1);
  assert.equal(cls('pchild')?.created, 0);
  assert.equal(cls('request')?.found, 0);
  assert.equal(cls('request')?.created, 1);
  const all = (ps: typeof p.pools): typeof p.pools => ps.flatMap((x) => [x, ...all(x.children)]);
  const pchild = all(p.pools).find((x) => x.tag === 'pchild')!;
  assert.equal(pchild.found, true);
  assert.equal(pchild.createSite, FOUND_SITE);
  assert.equal(pchild.children.length, 2, 'its found child and the request pool, under it');
});
