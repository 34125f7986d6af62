// The agent's state stays bounded whatever the uptime: thousands of worker generations (each
// defining its own stacks, making and dropping pools, then exiting) leave only what is live; the
// stack table, the live pools per process and the series tables stop at their caps and count
// what they refused; the attach session's stack interner forgets exited processes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/model/events.js';
import { frame } from '../../src/model/events.js';
import { StackInterner } from '../../src/model/stacks.js';
import { TargetModel } from '../../src/agent/model.js';
import { StackTable } from '../../src/agent/stacks.js';
import { Sampler } from '../../src/agent/sampler.js';
import { SeriesTable } from '../../src/agent/series.js';

const locator = { locate: (_pid: number, pc: number) => ({ path: '/opt/srv/bin/server', fileOffset: pc - 0x400000 }) };

/** A worker's life: defines its stacks (as a session would, ids of its own), makes pools. */
function worker(model: TargetModel, pid: number, t: number, opts: { sites: number; pools: number; leak: boolean }): void {
  const ev = (e: Event) => model.event(e);
  ev({ kind: 'fork', pid, t, parentPid: 1 });
  const interner = new StackInterner({ event: ev });
  for (let i = 0; i < opts.pools; i++) {
    const site = i % opts.sites;
    const stack = interner.stackId([frame({ pc: 0x401000 + site * 16, module: '/opt/srv/bin/server' }), frame({ pc: 0x402000, module: '/opt/srv/bin/server' })], pid);
    const pool = 0x10000 + i * 64;
    ev({ kind: 'pool-create', pid, t, tid: pid, pool, parent: 0, poolKind: 'srv', tag: '', stack });
    ev({ kind: 'pool-size', pid, t, pool, bytes: 1024 });
    if (!opts.leak || site !== 0) ev({ kind: 'pool-destroy', pid, t, pool, stack: 0 });
  }
}

test('thousands of worker generations leave only what is live', async () => {
  const stacks = new StackTable(1000);
  let now = 0;
  const model = new TargetModel(stacks, { poolsPerProcess: 1000, blocksPerProcess: 1000 }, () => now);
  model.locator = locator;
  model.event({ kind: 'process', pid: 1, t: 0, ppid: 0, command: 'srv: master', exe: '/opt/srv/bin/server' });
  const sampler = new Sampler({ points: 60, trackedSeries: 64, topSites: 5, topClasses: 5 });
  for (let g = 0; g < 3000; g++) {
    now = g;
    const pid = 1000 + g;
    worker(model, pid, g * 1e9, { sites: 8, pools: 40, leak: true });
    if (g % 10 === 0) {
      await stacks.name();
      sampler.sample(model, g);
    }
    // the worker is replaced (a reload, a respawn): its pools go with it
    model.event({ kind: 'exit', pid, t: g * 1e9 + 1, code: 0 });
  }
  assert.equal(model.procs.size, 1, 'only the master is left');
  assert.equal(model.exits, 3000);
  assert.equal(stacks.size, 8, 'one stack per site, however many processes defined it');
  assert.equal(stacks.dropped, 0);
  assert.ok(sampler.seriesCount <= 3 * 64, `series ${sampler.seriesCount}`);
});

test('caps: stacks, live pools per process, series; refusals counted', async () => {
  const stacks = new StackTable(100);
  const model = new TargetModel(stacks, { poolsPerProcess: 200, blocksPerProcess: 200 }, () => 0);
  model.locator = locator;
  model.event({ kind: 'process', pid: 7, t: 0, ppid: 0, command: 'srv', exe: '/opt/srv/bin/server' });
  // 1000 distinct sites, a pool each, all leaked
  const interner = new StackInterner({ event: (e) => model.event(e) });
  for (let i = 0; i < 1000; i++) {
    const stack = interner.stackId([frame({ pc: 0x401000 + i * 16, module: '/opt/srv/bin/server' })], 7);
    model.event({ kind: 'pool-create', pid: 7, t: i, tid: 7, pool: 0x10000 + i * 64, parent: 0, poolKind: 'srv', tag: '', stack });
  }
  assert.equal(stacks.size, 100);
  assert.equal(stacks.dropped, 900, 'every stack past the cap is counted (its frame or itself refused)');
  assert.equal(model.procs.get(7)!.pools.size, 200);
  assert.equal(model.overCap, 800);
  const table = new SeriesTable(10, 16, true);
  for (let t = 0; t < 50; t++) table.sample(t, new Map(Array.from({ length: 100 }, (_, i) => [`k${(i + t) % 300}`, i] as [string, number])));
  assert.ok(table.size <= 16, `series ${table.size}`);
  // a sampler shows the top K by name and the rest as "other"
  await stacks.name();
  const sampler = new Sampler({ points: 10, trackedSeries: 32, topSites: 5, topClasses: 3 });
  const n = sampler.sample(model, 1);
  assert.equal(n.sites.length, 6);
  assert.equal(n.sites[5]!.name, 'other');
  assert.equal(n.classes.length, 4);
  assert.equal(n.classes.reduce((s, c) => s + c.count, 0), 200, 'every live pool is counted, by name or in "other"');
});

test('the session\'s stack interner forgets an exited process: a new one with its pid gets fresh definitions', () => {
  const defs: Event[] = [];
  const interner = new StackInterner({ event: (e) => defs.push(e) });
  const frames = [frame({ pc: 0x401000, module: '/bin/x' }), frame({ pc: 0x402000, module: '/bin/x' })];
  for (let pid = 100; pid < 2100; pid++) {
    interner.stackId(frames, pid);
    interner.forget(pid);
  }
  const before = defs.length;
  interner.stackId(frames, 100);
  assert.equal(defs.length - before, 4, 'two frames and two stacks defined again');
  const size = (interner as unknown as { frameIds: Map<string, number>; stackIds: Map<string, number> });
  assert.equal(size.frameIds.size, 2);
  assert.equal(size.stackIds.size, 2);
});
