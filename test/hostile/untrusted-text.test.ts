// Text from a trace or log reaches a terminal only escaped (issue 17 item 17), and non-ASCII
// names are read as the UTF-8 servers write (item 20): pool tags, sites, request paths, frames,
// argv, markers and header fields holding escape sequences (retitle the window, clear the
// screen, bidi overrides) are shown as visible stand-ins in every text output; JSON escapes them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';
import { NS_META, rawTrace, rec } from '../support/raw-trace.js';
import type { AnalysisResult } from '../../src/analyses/result.js';

let dir = '';
const f = (n: string) => join(dir, n);
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-untrusted-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const TITLE = '\u001b]0;pwned\u0007';
const CLEAR = '\u001b[2J\u001b[H';
const CSI8 = '\u009b31m';
const BIDI = '\u202egnp.exe';
// Terminal controls: C0 (but the newline between lines), DEL, C1, bidi overrides.
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function clean(out: string, what: string): void {
  const m = RAW.exec(out);
  assert.equal(m, null, `${what}: raw control character U+${m?.[0].charCodeAt(0).toString(16).padStart(4, '0')} near ${JSON.stringify(out.slice(Math.max(0, (m?.index ?? 0) - 30), (m?.index ?? 0) + 10))}`);
}

const aprLine = (act: string, pool: string, tag: string, site: string, parent: string, size: number, n: number) =>
  Buffer.concat([Buffer.from(`POOL DEBUG: [3153/140113293346688] ${act.padStart(7)} (${String(size).padStart(10)}/${String(size).padStart(10)}/${String(size).padStart(10)}) ${pool} "`),
    Buffer.from(tag, 'utf8'), Buffer.from('" <'), typeof site === 'string' ? Buffer.from(site, 'utf8') : site, Buffer.from(`> ${parent} (${n}/${n}/0) \n`)]);

test('escape sequences in APR tags and sites, nginx paths and trace names: text outputs show stand-ins', async () => {
  const apr = f('evil-apr.log');
  writeFileSync(apr, Buffer.concat([
    aprLine('CREATE', '0x5000', `req${TITLE}`, 'main.c:1', '0x0', 0, 0),
    aprLine('PALLOC', '0x5000', `req${TITLE}`, `${CLEAR}evil.c:5`, '0x0', 64, 1),
    aprLine('PALLOC', '0x5000', `req${TITLE}`, `${CSI8}x.c:6`, '0x0', 128, 2),
  ]));
  const ngx = f('evil-nginx.log');
  writeFileSync(ngx, [
    '2026/11/22 05:30:02 [debug] 3643#0: *1 http request line: "GET /\u001b[31mred HTTP/1.1"',
    '2026/11/22 05:30:02 [debug] 3643#0: *1 malloc: 000055DB0B5B2C40:1024',
    '',
  ].join('\n'));
  const trace = f('evil.lstrace');
  writeFileSync(trace, rawTrace({ ...NS_META, hostname: `host${TITLE}`, command: `cmd${CLEAR}` }, [
    rec.ctx(42, 1), rec.process(0, 1, `./server --name ${TITLE}${BIDI}`, `/bin/x${CLEAR}`),
    rec.frame(1, 0x1000, `/lib/${CLEAR}.so`, `fn${TITLE}`, `f${CSI8}.c`, 3), rec.stack(1, 0, 1),
    rec.alloc(1, 0x10, 100, 1), rec.marker(1, `mark${CLEAR}`),
    rec.poolCreate(1, 0x20, 0, 1, 'apr', `tag${TITLE}`), rec.poolAlloc(1, 0x20, 50, 0, 1),
  ]));
  for (const input of [apr, ngx, trace]) {
    for (const args of [['analyze', input], ['info', input], ['diff', input, input], ['analyze', '--format', 'json', input], ['diff', '--format', 'json', input, input]]) {
      const r = await cli(args);
      assert.ok(r.code === 0 || r.code === 1, `${args.join(' ')}: ${r.stderr}`);
      clean(r.stdout, `${args.join(' ')} stdout`);
      clean(r.stderr, `${args.join(' ')} stderr`);
    }
  }
  const a = await cli(['analyze', apr]);
  assert.ok(a.stdout.includes('req␛]0;pwned␇'), a.stdout);
  assert.ok(a.stdout.includes('␛[2J␛[Hevil.c:5'), a.stdout);
  const t = await cli(['analyze', trace]);
  assert.ok(t.stdout.includes('./server --name ␛]0;pwned␇\ufffdgnp.exe'), t.stdout);
  const i = await cli(['info', trace]);
  assert.ok(i.stdout.includes('host␛]0;pwned␇'), i.stdout);
  // JSON keeps the text exactly (escaped by JSON itself).
  const j = JSON.parse((await cli(['analyze', '--format', 'json', trace])).stdout) as AnalysisResult;
  assert.equal(j.processes[0]!.command, `./server --name ${TITLE}${BIDI}`);
  // The HTML report escapes what it shows (and holds no raw escape character).
  const h = await cli(['report', trace, '-o', f('evil.html')]);
  assert.equal(h.code, 0, h.stderr);
  assert.doesNotMatch(readFileSync(f('evil.html'), 'utf8'), /\u001b/);
});

test('non-ASCII in APR sites and tags and in nginx paths is UTF-8; invalid bytes become U+FFFD', async () => {
  const apr = f('utf8-apr.log');
  writeFileSync(apr, Buffer.concat([
    aprLine('CREATE', '0x5000', 'pétition', 'main.c:1', '0x0', 0, 0),
    aprLine('PALLOC', '0x5000', 'pétition', 'módulo_ñ.c:25', '0x0', 64, 1),
    aprLine('PALLOC', '0x5000', 'pétition', Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x63, 0x3a, 0x33]) as unknown as string, '0x0', 100, 2),
  ]));
  const j = JSON.parse((await cli(['analyze', '--format', 'json', apr])).stdout) as AnalysisResult;
  const labels = j.processes[0]!.sites.map((s) => s.label);
  assert.ok(labels.includes('módulo_ñ.c:25'), labels.join(' | '));
  assert.ok(labels.includes('bad\ufffd.c:3'), labels.join(' | '));
  assert.equal(j.processes[0]!.pools[0]!.tag, 'pétition');

  const ngx = f('utf8-nginx.log');
  writeFileSync(ngx, [
    '2026/11/22 05:30:02 [debug] 3643#0: *1 http request line: "GET /café/ünï HTTP/1.1"',
    '2026/11/22 05:30:02 [debug] 3643#0: *1 malloc: 000055DB0B5B2C40:1024',
    '',
  ].join('\n'));
  const n = JSON.parse((await cli(['analyze', '--format', 'json', ngx])).stdout) as AnalysisResult;
  const all = JSON.stringify(n.processes.map((p) => p.sites.map((s) => [s.label, s.stack])));
  assert.ok(all.includes('GET /café/ünï'), all);
});
