// Renders every fixture through every output of the CLI, in one process, into a directory:
// `node --import tsx test/golden/render.ts DIR`. test/golden/golden.test.ts compares DIR with
// test/golden/expected/ byte for byte; `npm run goldens` writes test/golden/expected/ itself.
//
// The commands run as the CLI runs them (commander parses the same arguments, the same command
// modules execute), with stdout and stderr captured; output files go to a temporary directory.
// Outputs are kept as written, except where a byte of them is not ours to keep:
//   - the HTML report: its embedded data (with the `generated` time blanked) and the page around
//     it with the browser bundle, the stylesheet and the bundle's CSP hash left out (web/ changes
//     them; the report's browser tests check the page itself);
//   - pprof: the decoded profile.proto as JSON, not the gzip bytes (zlib's version decides those).
// Times are rendered in UTC and strings sorted in the C locale: the test and `npm run goldens`
// pass TZ=UTC LC_ALL=C, and this script refuses to run without them.

import { Command } from 'commander';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { register as analyze } from '../../src/cli/commands/analyze.js';
import { register as info } from '../../src/cli/commands/info.js';
import { register as importCmd } from '../../src/cli/commands/import.js';
import { register as report } from '../../src/cli/commands/report.js';
import { register as exportCmd } from '../../src/cli/commands/export.js';
import { register as diff } from '../../src/cli/commands/diff.js';

/** The inputs: every fixture of test/fixtures (paths as given on the command line, from the repository root). */
const F = {
  apr: 'test/fixtures/apr-pool-debug.httpd-1child.log.gz',
  nginx: 'test/fixtures/nginx-debug.1worker.log.gz',
  every: 'test/fixtures/lstrace/every-kind.lstrace',
  everyZst: 'test/fixtures/lstrace/every-kind.lstrace.zst',
  scenario: 'test/fixtures/lstrace/scenario.lstrace',
  hostile: 'test/fixtures/lstrace/scenario-hostile.lstrace',
  valgrind: 'test/fixtures/valgrind/vg-pool.xml',
  heaptrack: 'test/fixtures/heaptrack/heaptrack.ht-leak.20492.zst',
} as const;

type Out = 'stdout' | 'html' | 'pprof' | 'file';
interface Case {
  name: string;
  args: string[];
  /** What the case's golden holds: stdout, or the file given as OUT, transformed as said above. */
  out: Out;
  ext: string;
}

export const CASES: Case[] = [];
const add = (name: string, out: Out, ext: string, ...args: string[]) => CASES.push({ name, args, out, ext });
for (const [key, path] of Object.entries(F)) {
  add(`${key}.analyze`, 'stdout', 'txt', 'analyze', path);
  add(`${key}.info`, 'stdout', 'txt', 'info', path);
  add(`${key}.info`, 'stdout', 'json', 'info', path, '--format', 'json');
  add(`${key}.import`, 'file', 'lstrace', 'import', path, '-o', 'OUT');
  // The zstd copy of every-kind.lstrace: the rest would repeat every-kind's outputs.
  if (key === 'everyZst') continue;
  add(`${key}.analyze`, 'stdout', 'json', 'analyze', path, '--format', 'json');
  add(`${key}.report`, 'html', 'html', 'report', path, '-o', 'OUT');
  add(`${key}.export`, 'pprof', 'pprof.json', 'export', path, '--to', 'pprof', '-o', 'OUT');
  add(`${key}.export`, 'file', 'speedscope.json', 'export', path, '--to', 'speedscope', '-o', 'OUT');
  add(`${key}.export`, 'file', 'collapsed.txt', 'export', path, '--to', 'collapsed', '-o', 'OUT');
  add(`${key}.export-alloc`, 'file', 'collapsed.txt', 'export', path, '--to', 'collapsed', '--value', 'alloc', '-o', 'OUT');
  add(`${key}.diff-from-start`, 'stdout', 'txt', 'diff', path, '--from', '0');
}
// Options that change what is analysed.
add('apr.analyze-pid-top', 'stdout', 'txt', 'analyze', F.apr, '--pid', '3160', '--top', '3');
add('nginx.analyze-min-age', 'stdout', 'json', 'analyze', F.nginx, '--min-age', '2500ms', '--format', 'json');
add('heaptrack.analyze-suppress', 'stdout', 'txt', 'analyze', F.heaptrack, '--suppress', 'test/golden/suppress.txt');
add('scenario.report-top', 'html', 'html', 'report', F.scenario, '--top', '1', '--pid', '4242', '-o', 'OUT');
add('scenario.export-pid', 'file', 'collapsed.txt', 'export', F.scenario, '--to', 'collapsed', '--pid', '4242', '-o', 'OUT');
// Several inputs read as one.
add('heaptrack+scenario.analyze', 'stdout', 'txt', 'analyze', F.heaptrack, F.scenario);
add('apr+nginx.analyze', 'stdout', 'txt', 'analyze', F.apr, F.nginx); // refused: clocks differ
// Diffs: between points (times and marker names) of one input, and between two inputs.
for (const [name, fmt] of [['txt', 'text'], ['json', 'json'], ['html', 'html']] as const) {
  add('scenario.diff-markers', 'stdout', name, 'diff', F.scenario, '--from', 'warmup done', '--to', 'load', '--format', fmt);
  add('scenario.diff-times', 'stdout', name, 'diff', F.scenario, '--from', '200ms', '--to', '900ms', '--format', fmt);
  add('hostile.diff-markers', 'stdout', name, 'diff', F.hostile, '--from', `warmup done${'<script>window.__pwned=1</script>"\'<img src=x onerror="window.__pwned=2"><!--\u2028'}`, '--format', fmt);
  add('every-vs-scenario.diff', 'stdout', name, 'diff', F.every, F.scenario, '--format', fmt);
  add('heaptrack-vs-scenario.diff', 'stdout', name, 'diff', F.heaptrack, F.scenario, '--format', fmt);
}
add('apr.diff-events', 'stdout', 'txt', 'diff', F.apr, '--from', '5000', '--to', '20000');
add('nginx.diff-to', 'file', 'json', 'diff', F.nginx, '--to', '2s', '--format', 'json', '-o', 'OUT');
add('valgrind-vs-apr.diff', 'stdout', 'txt', 'diff', F.valgrind, F.apr);

function program(): Command {
  const p = new Command().name('leakscope').exitOverride();
  for (const reg of [analyze, info, importCmd, report, exportCmd, diff]) reg(p);
  return p;
}

interface Ran {
  stdout: Buffer;
  stderr: string;
  status: number;
}

async function run(args: string[]): Promise<Ran> {
  const out: Buffer[] = [];
  const err: string[] = [];
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  const grab = (into: (b: Buffer) => void) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    into(Buffer.from(chunk));
    const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = grab((b) => out.push(b));
  process.stderr.write = grab((b) => err.push(b.toString('utf8')));
  process.exitCode = undefined;
  let status: number;
  try {
    await program().parseAsync(args, { from: 'user' });
    status = Number(process.exitCode ?? 0);
  } catch (e) {
    // Commander's own usage errors (exitOverride throws them instead of exiting).
    const code = (e as { exitCode?: number }).exitCode;
    status = typeof code === 'number' ? code : 99;
    if (typeof code !== 'number') err.push(`(thrown) ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
  return { stdout: Buffer.concat(out), stderr: err.join(''), status };
}

/** The report page without what web/ decides, and its data. */
function splitHtml(html: string): { page: string; data: string } {
  const m = /<script type="application\/json" id="leakscope-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no leakscope-data element in the report');
  const data = JSON.parse(m[1]!) as { generated?: string };
  if (typeof data.generated !== 'string' || Number.isNaN(Date.parse(data.generated))) throw new Error('the report data has no generation time');
  data.generated = '(generated)';
  const page = html
    .replace(m[1]!, '(data)')
    .replace(/script-src 'sha256-[^']*'/, "script-src 'sha256-(bundle)'")
    .replace(/<style>[\s\S]*?<\/style>/, '<style>(web/report.css)</style>')
    .replace(/<script>[\s\S]*<\/script>/, '<script>(web bundle)</script>');
  return { page, data: `${JSON.stringify(data, null, 1)}\n` };
}

function pprofJson(gz: Buffer): string {
  const p = Profile.decode(gunzipSync(gz));
  return `${JSON.stringify(p, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v), 1)}\n`;
}

/** Renders every case into `dir` (created; existing files there are removed first). */
export async function renderAll(dir: string): Promise<void> {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (tz !== 'UTC' && tz !== 'Etc/UTC') throw new Error(`run with TZ=UTC (the time zone is ${tz})`);
  if (process.env.LC_ALL !== 'C') throw new Error('run with LC_ALL=C');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'leakscope-golden-'));
  const index: string[] = [];
  try {
    for (const c of CASES) {
      const file = join(tmp, `out.${c.ext}`);
      rmSync(file, { force: true });
      const r = await run(c.args.map((a) => (a === 'OUT' ? file : a)));
      const base = `${c.name}.${c.ext}`;
      if (c.out === 'stdout') writeFileSync(join(dir, base), r.stdout);
      else if (r.status !== 0 && r.status !== 1) {
        // No output file (the golden is the error in the index).
      } else if (c.out === 'file') writeFileSync(join(dir, base), readFileSync(file));
      else if (c.out === 'pprof') writeFileSync(join(dir, base), pprofJson(readFileSync(file)));
      else {
        const { page, data } = splitHtml(readFileSync(file, 'utf8'));
        writeFileSync(join(dir, base), page);
        writeFileSync(join(dir, `${c.name}.data.json`), data);
      }
      if (c.out !== 'stdout' && r.stdout.length > 0) throw new Error(`${base}: unexpected stdout`);
      const args = c.args.map((a) => (/^[\w./=+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
      index.push(`$ leakscope ${args}\n  -> ${base}, exit ${r.status}\n${r.stderr.split(tmp).join('$TMP').replace(/^/gm, '  | ').replace(/ {2}\| $/, '')}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(join(dir, 'index.txt'), `${index.join('\n').replace(/\n+$/, '')}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node --import tsx test/golden/render.ts DIR\n');
    process.exit(2);
  }
  await renderAll(dir);
}
