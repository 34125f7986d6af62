// Probe specs compiled from the shipped allocator profiles: which calls are probed at entry, at
// return, or at return alone (no entry program) — what the BPF loader attaches.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventPerCall, loadProfile } from '../../src/attach/profile.js';
import { compileSpecs, F_ENTRY_EMIT, F_RET_ONLY, F_STACK, F_WALK_RET } from '../../src/attach/specs.js';

function spec(profile: string, symbol: string, opts: Parameters<typeof compileSpecs>[1]) {
  const s = compileSpecs([loadProfile(profile)], opts).find((x) => x.fn.symbol === symbol);
  assert.ok(s, `${symbol} compiled`);
  return s;
}

test('ngx_create_pool in events mode: a return probe alone (its size comes from walking the new pool)', () => {
  const s = spec('nginx', 'ngx_create_pool', { poolAllocs: false, mode: 'events' });
  assert.equal(s.flags & F_RET_ONLY, F_RET_ONLY);
  assert.equal(s.flags & F_ENTRY_EMIT, 0);
  assert.equal(s.flags & (F_STACK | F_WALK_RET), F_STACK | F_WALK_RET, 'creating stack and first size still taken');
});

test('aggregate mode counts the creation size argument: ngx_create_pool keeps its entry program', () => {
  const s = spec('nginx', 'ngx_create_pool', { poolAllocs: false, mode: 'aggregate' });
  assert.equal(s.flags & F_RET_ONLY, 0);
});

test('calls whose arguments are read at return keep entry + return programs', () => {
  // malloc's size is arg0; APR writes the new pool through arg0 and names the parent in arg1
  for (const [profile, symbol] of [['libc', 'malloc'], ['apr', 'apr_pool_create_ex'], ['nginx', 'ngx_palloc']] as const) {
    const s = spec(profile, symbol, { poolAllocs: true, mode: 'events' });
    assert.equal(s.flags & (F_RET_ONLY | F_ENTRY_EMIT), 0, `${symbol}: entry + return`);
  }
  // free and ngx_destroy_pool need no return value: entry alone
  for (const [profile, symbol] of [['libc', 'free'], ['nginx', 'ngx_destroy_pool']] as const) {
    assert.equal(spec(profile, symbol, { poolAllocs: false, mode: 'events' }).flags & F_ENTRY_EMIT, F_ENTRY_EMIT, symbol);
  }
});

test('an event per allocation call (the 64 MiB ring by default) follows from the shipped profiles', () => {
  const [nginx, apr, libc] = ['nginx', 'apr', 'libc'].map((n) => loadProfile(n));
  assert.equal(eventPerCall([nginx!], false), false, 'nginx default: pool lifecycles only');
  assert.equal(eventPerCall([nginx!], true), true, 'nginx --pool-allocs: every ngx_palloc');
  assert.equal(eventPerCall([libc!], false), true, 'the malloc family');
  assert.equal(eventPerCall([nginx!, libc!], false), true);
  assert.equal(eventPerCall([apr!], true), true);
});

test('APR tags are read from the pools by default: apr_pool_tag (a single-stepped store) is probed only with --pool-allocs; destroy and clear read the tag at discover.tag', () => {
  const apr = loadProfile('apr');
  const tagAt = apr.discover?.tag;
  assert.equal(typeof tagAt, 'number');
  const lean = compileSpecs([apr], { poolAllocs: false, mode: 'events' });
  assert.ok(!lean.some((s) => s.fn.role === 'pool-tag'), 'no tag probe by default');
  // the last field of a spec line is the tag offset (-1: none)
  for (const role of ['pool-destroy', 'pool-clear']) {
    const s = lean.find((x) => x.fn.role === role)!;
    assert.equal(s.fields[s.fields.length - 1], tagAt, `${s.fn.symbol} reads the tag`);
  }
  assert.equal(lean.find((x) => x.fn.role === 'pool-create')!.fields.at(-1), -1, 'a new pool has no tag yet');
  const full = compileSpecs([apr], { poolAllocs: true, mode: 'events' });
  assert.ok(full.some((s) => s.fn.symbol === 'apr_pool_tag'), '--pool-allocs probes apr_pool_tag');
  for (const s of full) assert.equal(s.fields.at(-1), -1, `${s.fn.symbol}: the probed tag is the one kept`);
  // nginx pools have no tags: nothing read
  for (const s of compileSpecs([loadProfile('nginx')], { poolAllocs: false, mode: 'events' })) assert.equal(s.fields.at(-1), -1);
});
