// Damaged input never throws: real lines cut, spliced and mixed with garbage, for every source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aprLogSource } from '../../src/sources/apr-log.js';
import { nginxLogSource } from '../../src/sources/nginx-log.js';
import { heaptrackSource } from '../../src/sources/heaptrack.js';
import { valgrindSource } from '../../src/sources/valgrind.js';
import type { Source } from '../../src/sources/source.js';
import { collect, fixtureText } from './collect.js';

const apr = fixtureText('apr-pool-debug.httpd-1child.log.gz').toString('latin1').split('\n').slice(7900, 8400);
const ngx = fixtureText('nginx-debug.1worker.log.gz').toString('latin1').split('\n').slice(0, 400);
const ht = ['v 10400 3', 'X ./x 1', 'I 1000 100', 's 4 main', 's 3 x.c', 's 3 /x', 'i 1000 3 1 2 a', 't 1 0', 'a 40 1', '+ 0', '- 0', '+ 0', 'c 10', 'R 20',
  'i 1010 3 1 2 b 1 2 c', 't 2 1', 'a 20 2', '+ 1', '- 1'];
const vg = ['<?xml version="1.0"?>', '<valgrindoutput>', '<pid>9</pid>', '<ppid>1</ppid>', '<args><argv><exe>./x</exe></argv></args>',
  '<error><kind>Leak_DefinitelyLost</kind><xwhat><text>48 bytes in 1 blocks</text><leakedbytes>48</leakedbytes><leakedblocks>1</leakedblocks></xwhat>',
  '<stack><frame><ip>0x1</ip><obj>/x</obj><fn>malloc</fn></frame><frame><ip>0x2</ip><fn>main</fn><file>x.c</file><line>3</line></frame></stack></error>',
  '</valgrindoutput>'];

/** Lines from the real sample, some cut, some replaced by garbage, shuffled a little. */
function damaged(lines: string[]) {
  return fc.array(
    fc.oneof(
      fc.constantFrom(...lines),
      fc.tuple(fc.constantFrom(...lines), fc.nat()).map(([l, n]) => l.slice(0, n % (l.length + 1))),
      fc.string({ maxLength: 80 }),
      fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a).toString('latin1')),
    ),
    { maxLength: 200 },
  ).map((ls) => ls.join('\n'));
}

for (const [name, source, lines] of [
  ['apr-log', aprLogSource, apr], ['nginx-log', nginxLogSource, ngx], ['heaptrack', heaptrackSource, ht], ['valgrind', valgrindSource, vg],
] as [string, Source, string[]][]) {
  test(`${name}: damaged input never throws and every stack used is defined`, async () => {
    await fc.assert(fc.asyncProperty(damaged(lines), fc.integer({ min: 1, max: 300 }), async (text, chunk) => {
      const c = await collect(source, Buffer.from(text, 'latin1'), chunk);
      for (const e of c.events) if ((e.kind === 'alloc' || e.kind === 'pool-alloc') && e.stack) c.frames(e.pid, e.stack);
      assert.ok(c.stats.badRecords >= 0 && c.stats.badSamples.length <= 5);
    }), { numRuns: 150 });
  });
}
