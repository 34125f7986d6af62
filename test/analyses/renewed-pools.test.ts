// A pool class whose level rises because more of its pools are live at once (a request pool per
// open keepalive connection, each renewed as connections close) keeps nothing; the same rise
// made of pools that are never destroyed is a leak. Offline analysis tells them apart by what
// the pools alive halfway through the rise still hold, as the agent does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import type { Event, TraceMeta } from '../../src/model/events.js';

const META: TraceMeta = { format: 1, clock: 'ns', source: 'test' };
const MS = 1e6;

/** A running server (it never exits): connections open over time, from 2 to 40 live at once;
 *  each has a pool tagged `conn` fed 4 KiB. `renew`: a connection closes after `life` steps and
 *  its pool is destroyed; otherwise every pool stays. `pause`: ms of idle time before a step. */
function server(renew: boolean, pause: (step: number) => number = () => 0) {
  const engine = new Engine({ meta: META });
  const pid = 200;
  const ev = (e: Event) => engine.event(e);
  let t = 0;
  ev({ kind: 'process', pid, t, ppid: 1, command: 'httpd', exe: '/usr/sbin/httpd' });
  const live: { addr: number; born: number }[] = [];
  let next = 0x10000;
  const steps = 4000;
  const life = 120;
  for (let i = 0; i < steps; i++) {
    t += pause(i) * MS;
    if (renew) {
      while (live.length > 0 && i - live[0]!.born > life) {
        ev({ kind: 'pool-destroy', pid, t: (t += MS), pool: live.shift()!.addr, stack: 0 });
      }
    }
    const want = 2 + Math.floor((38 * i) / steps);
    while (live.length < want) {
      const addr = (next += 0x100);
      ev({ kind: 'pool-create', pid, t: (t += MS), tid: 0, pool: addr, parent: 0, poolKind: 'apr', tag: 'conn', stack: 0 });
      ev({ kind: 'pool-alloc', pid, t: (t += MS), tid: 0, pool: addr, size: 4096, addr: 0, stack: 0 });
      live.push({ addr, born: i });
    }
  }
  const p = analyze(engine.finish(), { top: 10 }).processes.find((x) => x.pid === pid)!;
  return p.poolClasses.find((c) => c.name === 'conn')!;
}

test('a class renewed as connections come and go is not a leak, however its level rose', () => {
  const c = server(true);
  assert.ok(c.destroyed > 400, `destroyed ${c.destroyed}`);
  assert.ok(c.peakBytes >= 35 * 4096, `peak ${c.peakBytes}`);
  assert.notEqual(c.verdict.verdict, 'leak', c.verdict.explanation);
  assert.notEqual(c.verdict.verdict, 'growing', c.verdict.explanation);
  assert.match(c.verdict.explanation ?? '', /no memory is kept/);
});

test('the same rise made of pools never destroyed is a leak', () => {
  const c = server(false);
  assert.equal(c.destroyed, 0);
  assert.equal(c.verdict.verdict, 'leak', c.verdict.explanation);
});

// Connections at an uneven rate: an idle 20 s a fifth of the way up the rise (a lull in traffic,
// a loaded machine), so the time's midpoint comes early in the rise. What the pools alive then
// hold is judged against the level the class had then, not against half the rise.
const slowStart = (i: number): number => (i === 800 ? 20_000 : 0);

test('a leak of pools made at an uneven rate is still a leak', () => {
  const c = server(false, slowStart);
  assert.equal(c.destroyed, 0);
  assert.equal(c.verdict.verdict, 'leak', c.verdict.explanation);
});

test('a class renewed at an uneven rate still keeps nothing', () => {
  const c = server(true, slowStart);
  assert.ok(c.destroyed > 400, `destroyed ${c.destroyed}`);
  assert.notEqual(c.verdict.verdict, 'leak', c.verdict.explanation);
  assert.notEqual(c.verdict.verdict, 'growing', c.verdict.explanation);
  assert.match(c.verdict.explanation ?? '', /no memory is kept/);
});
