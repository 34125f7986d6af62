// Hostile inputs for the fuzz suite, in every format leakscope reads: generated records with
// adversarial values (2^64, negatives, huge digit strings, NUL, invalid UTF-8, control
// characters, pools that are their own parents or form cycles), lines of the real fixtures cut
// and spliced, and byte-level edits of any of them (bytes changed, ranges cut or repeated,
// hostile bytes inserted, the end cut off), the real trace fixture included.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { root } from '../support/cli.js';
import { header, NS_META, rawTrace, rec } from '../support/raw-trace.js';

export type Format = 'apr' | 'nginx' | 'valgrind' | 'heaptrack' | 'lstrace';
export const FORMATS: Format[] = ['apr', 'nginx', 'valgrind', 'heaptrack', 'lstrace'];

const fixtureLines = (name: string, from: number, n: number) =>
  gunzipSync(readFileSync(join(root, 'test/fixtures', name))).toString('latin1').split('\n').slice(from, from + n);
export const APR_LINES = fixtureLines('apr-pool-debug.httpd-1child.log.gz', 7900, 300);
export const NGINX_LINES = fixtureLines('nginx-debug.1worker.log.gz', 0, 300);

/** Decimal numbers as a log could print them, adversarial ones often. */
const decimal = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 100_000 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('0', '18446744073709551615', '18446744073709551616', '9007199254740993', '-1', '-9223372036854775808', '1e30', '99999999999999999999999999999999', '4294967296', '2147483648') },
);
/** Hex addresses: few distinct ones, so pools meet again (parents, cycles, reuse). */
const hexAddr = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 12 }).map((i) => (0x555754c00000 + i * 0x100).toString(16)) },
  { weight: 1, arbitrary: fc.constantFrom('0', 'ffffffffffffffff', '10000000000000000', 'fffffffffffff') },
);
/** Text fields: plain, non-ASCII, invalid UTF-8, NUL, terminal escapes, very long. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('p', 'pconf', 'transaction', 'mod_leaky.c:25', 'main.c:786', 'tables/apr_tables.c:88') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('módulo.c:1', '\u001b]0;t\u0007x.c:1', '\u001b[2J', 'a\u0000b', '\u202eevil', '\ufffd', 'x'.repeat(5000)) },
);
const bytesOf = (s: string) => Buffer.from(s, 'utf8');
const invalidUtf8 = fc.constantFrom(Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x80, 0x80]));

const APR_ACTS = ['PALLOC', 'PCALLOC', 'CREATE', 'CREATEU', 'DESTROY', 'CLEAR', 'CLEARED', 'GLOBAL', 'LIFE', 'OWNER', 'THREAD'];

/** One APR pool-debug line with hostile fields. */
const aprLine = fc.tuple(fc.constantFrom('3153', '3154', '99999999999999999999', '0'), fc.constantFrom(...APR_ACTS), decimal, decimal, hexAddr, text, text, hexAddr, decimal)
  .map(([pid, act, size, total, pool, tag, site, parent, n]) =>
    act === 'GLOBAL' || act === 'LIFE' || act === 'OWNER' || act === 'THREAD'
      ? `POOL DEBUG: [${pid}/140113293346688] ${act.padStart(7)} 0x${pool} <${site}>`
      : `POOL DEBUG: [${pid}/140113293346688] ${act.padStart(7)} (${size.padStart(10)}/${size.padStart(10)}/${total.padStart(10)}) 0x${pool} "${tag}" <${site}> 0x${parent} (${n}/${n}/0) `);

/** One nginx debug line with hostile fields. */
const nginxLine = fc.tuple(fc.constantFrom('3643', '3644', '99999999999999999999'), fc.nat({ max: 5 }), hexAddr, decimal, text, fc.constantFrom('malloc', 'posix_memalign', 'free', 'create pool', 'destroy pool', 'http request line', 'http uri', 'run cleanup', 'add cleanup'))
  .map(([pid, conn, addr, size, t, what]) => {
    const head = `2026/11/22 05:30:02 [debug] ${pid}#0: ${conn ? `*${conn} ` : ''}`;
    switch (what) {
      case 'malloc': return `${head}malloc: ${addr.padStart(16, '0').toUpperCase()}:${size}`;
      case 'posix_memalign': return `${head}posix_memalign: ${addr.padStart(16, '0').toUpperCase()}:${size} @16`;
      case 'free': return `${head}free: ${addr.padStart(16, '0').toUpperCase()}, unused: ${size}`;
      case 'create pool': return `${head}create pool: ${addr.padStart(16, '0').toUpperCase()}:${size}`;
      case 'destroy pool': return `${head}destroy pool: ${addr.padStart(16, '0').toUpperCase()}`;
      case 'http request line': return `${head}http request line: "GET /${t} HTTP/1.1"`;
      case 'http uri': return `${head}http uri: "/${t}"`;
      default: return `${head}${what}: ${addr}`;
    }
  });

/** Lines of a real fixture, some cut, some hostile, some random bytes; mixed in order. */
function textLog(real: string[], hostile: fc.Arbitrary<string>): fc.Arbitrary<Buffer> {
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...real).map(bytesOf) },
      { weight: 3, arbitrary: hostile.map(bytesOf) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...real), fc.nat()).map(([l, k]) => bytesOf(l.slice(0, k % (l.length + 1)))) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...real), fc.nat(), invalidUtf8).map(([l, k, bad]) => Buffer.concat([bytesOf(l.slice(0, k % (l.length + 1))), bad, bytesOf(l.slice(k % (l.length + 1)))])) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)) },
    ),
    { minLength: 40, maxLength: 300 },
  ).map((ls) => Buffer.concat(ls.flatMap((l) => [l, Buffer.from('\n')])));
}

// Block counts: small, or past what any reader may take. (A count in between is expanded up to
// leakscope's budget of 1,000,000 blocks per file: claims.test.ts covers it, once.)
const blockCount = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 200 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom('0', '18446744073709551615', '-1', '1e30', '99999999999999999999999999999999', '9007199254740993') },
);
const valgrindRecord = fc.tuple(fc.constantFrom('Leak_DefinitelyLost', 'Leak_IndirectlyLost', 'Leak_PossiblyLost', 'Leak_StillReachable', 'InvalidRead', 'Leak_'), decimal, blockCount, text, fc.nat({ max: 6 }))
  .map(([kind, bytes, blocks, fn, depth]) => `<error><kind>${kind}</kind><xwhat><text>${bytes} (${bytes} direct, 0 indirect) bytes in ${blocks} blocks</text><leakedbytes>${bytes}</leakedbytes><leakedblocks>${blocks}</leakedblocks></xwhat><stack>` +
    Array.from({ length: depth }, (_, i) => `<frame><ip>0x${(0x400000 + i).toString(16)}</ip><obj>/x</obj><fn>${xml(fn)}${i}</fn><file>x.c</file><line>${i}</line></frame>`).join('') + '</stack></error>');
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const valgrindXml = fc.tuple(decimal, fc.array(valgrindRecord, { maxLength: 12 }), fc.nat({ max: 3 }), fc.nat())
  .map(([pid, records, cut, at]) => {
    const full = ['<?xml version="1.0"?>', '<valgrindoutput>', '<protocolversion>4</protocolversion>', '<protocoltool>memcheck</protocoltool>', `<pid>${pid}</pid>`, '<ppid>1</ppid>',
      '<args><argv><exe>./x</exe><arg>--name</arg></argv></args>', ...records, '</valgrindoutput>', ''].join('\n');
    // Sometimes cut short, as a killed valgrind leaves it.
    return bytesOf(cut === 0 ? full.slice(0, 200 + (at % Math.max(1, full.length - 200))) : full);
  });

const htHex = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 40 }).map((n) => n.toString(16)) }, { weight: 1, arbitrary: fc.constantFrom('ffffffffffffffff', '10000000000000000', '-1', 'zz') });
const heaptrackLine = fc.tuple(fc.constantFrom('s', 'i', 't', 'a', '+', '-', 'c', 'R', 'X', 'A', 'I', 'v'), htHex, htHex, htHex, text)
  .map(([k, a, b, c, t]) => (k === 's' ? `s ${a} ${t}` : k === 'X' ? `X ${t}` : k === '+' || k === '-' || k === 'c' || k === 'R' ? `${k} ${a}` : `${k} ${a} ${b} ${c}`));
const heaptrack = fc.array(heaptrackLine, { minLength: 20, maxLength: 300 }).map((ls) => bytesOf(['v 10400 3', 'X ./x 1', 's 4 main', 'i 1000 3 1 2', 't 1 0', 'a 40 1', ...ls, ''].join('\n')));

const big = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 5000n }) },
  { weight: 1, arbitrary: fc.constantFrom(2n ** 64n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 50n + 1n, 2n ** 31n, 0n) },
);
const sbig = fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: -50n, max: 5000n }) }, { weight: 1, arbitrary: fc.constantFrom(2n ** 62n, -(2n ** 62n), 2n ** 52n + 1n) });
const pidV = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(100n, 101n, 102n) }, { weight: 1, arbitrary: big });
const poolV = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(0x10n, 0x20n, 0x30n, 0x40n) }, { weight: 1, arbitrary: big });

const record = fc.oneof(
  fc.tuple(pidV, big).map(([p, t]) => rec.ctx(p, t)),
  fc.tuple(sbig, pidV, text).map(([dt, pp, c]) => rec.process(dt, pp, c, c)),
  fc.tuple(sbig, pidV).map(([dt, pp]) => rec.fork(dt, pp)),
  fc.tuple(sbig, sbig).map(([dt, c]) => rec.exit(dt, c)),
  fc.tuple(sbig, big, big, fc.nat({ max: 8 })).map(([dt, a, s, st]) => rec.alloc(dt, a, s, st)),
  fc.tuple(sbig, big).map(([dt, a]) => rec.free(dt, a)),
  fc.tuple(sbig, big, big, big).map(([dt, o, a, s]) => rec.realloc(dt, o, a, s)),
  fc.tuple(sbig, poolV, poolV, text).map(([dt, p, parent, tag]) => rec.poolCreate(dt, p, parent, 0, 'apr', tag)),
  fc.tuple(sbig, poolV).map(([dt, p]) => rec.poolDestroy(dt, p)),
  fc.tuple(sbig, poolV, big).map(([dt, p, s]) => rec.poolAlloc(dt, p, s)),
  fc.tuple(sbig, poolV, big).map(([dt, p, s]) => rec.poolSize(dt, p, s)),
  fc.tuple(sbig, big, big).map(([dt, a, s]) => rec.mmap(dt, a, s, 3, 0x22)),
  fc.tuple(sbig, big).map(([dt, b]) => rec.rss(dt, b)),
  fc.tuple(sbig, text, sbig).map(([dt, w, v]) => rec.kernel(dt, w, v)),
  fc.tuple(sbig, text).map(([dt, l]) => rec.marker(dt, l)),
  fc.tuple(sbig, big, text).map(([dt, c, r]) => rec.lost(dt, c, r)),
  fc.tuple(fc.nat({ max: 8 }), big, text).map(([id, pc, fn]) => rec.frame(id, pc, '/lib/x.so', fn, 'x.c', id)),
  fc.tuple(fc.nat({ max: 8 }), fc.nat({ max: 8 }), fc.nat({ max: 8 })).map(([id, parent, f]) => rec.stack(id, parent, f)),
);
const lstrace = fc.tuple(fc.array(fc.array(record, { minLength: 10, maxLength: 80 }), { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }), fc.constantFrom('ns', 'seq'))
  .map(([chunks, flips, clock]) => {
    const meta = { ...NS_META, clock };
    const b = rawTrace(meta, ...chunks);
    // A few flipped bytes past the header: damaged chunks.
    const h = header(meta).length;
    for (const [at, v] of flips) if (b.length > h) b[h + (at % (b.length - h))] = v;
    return b;
  });

/** The real trace fixture (one event of every kind, several chunks), to mutate. */
const EVERY_KIND = readFileSync(join(root, 'test/fixtures/lstrace/every-kind.lstrace'));

/** Bytes an edit may put in: NUL, invalid UTF-8, terminal escapes, a varint of 2^64, a newline. */
const hostileBytes = fc.oneof(
  invalidUtf8,
  fc.constantFrom(Buffer.from([0]), Buffer.from('\u001b[2J\u001b]0;x\u0007'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Buffer.from('\n'), Buffer.from('\r\n')),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((a) => Buffer.from(a)),
);

/** One edit of a file's bytes: a byte changed, a range cut out, repeated or replaced, the end cut. */
type Edit = (b: Buffer) => Buffer;
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 255 })).map(([at, v]): Edit => (b) => {
    if (b.length === 0) return b;
    const c = Buffer.from(b);
    c[at % c.length] = v;
    return c;
  }),
  fc.tuple(fc.nat(), fc.nat({ max: 400 })).map(([at, n]): Edit => (b) => Buffer.concat([b.subarray(0, at % (b.length + 1)), b.subarray((at % (b.length + 1)) + n)])),
  fc.tuple(fc.nat(), fc.nat({ max: 400 }), fc.integer({ min: 1, max: 50 })).map(([at, n, times]): Edit => (b) => {
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), ...Array<Buffer>(times).fill(b.subarray(i, i + n)), b.subarray(i)]);
  }),
  fc.tuple(fc.nat(), hostileBytes).map(([at, x]): Edit => (b) => {
    const i = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, i), x, b.subarray(i)]);
  }),
  fc.nat().map((at): Edit => (b) => b.subarray(0, at % (b.length + 1))),
);

/** `base`, and half the time the same file with one to five byte-level edits. */
function mutated(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.array(edit, { maxLength: 5 }), fc.boolean())
    .map(([b, edits, keep]) => (keep ? b : edits.reduce((x, e) => e(x), b)));
}

/** Inputs of every format; `fc.sample`/`fc.assert` draw from it. */
export const inputs: Record<Format, fc.Arbitrary<Buffer>> = {
  apr: mutated(textLog(APR_LINES, aprLine)),
  nginx: mutated(textLog(NGINX_LINES, nginxLine)),
  valgrind: mutated(valgrindXml),
  heaptrack: mutated(heaptrack),
  lstrace: fc.oneof({ weight: 3, arbitrary: mutated(lstrace) }, { weight: 1, arbitrary: mutated(fc.constant(EVERY_KIND)) }),
};

/** --from name of each format. */
export const FROM: Record<Format, string> = { apr: 'apr-log', nginx: 'nginx-log', valgrind: 'valgrind', heaptrack: 'heaptrack', lstrace: 'lstrace' };
