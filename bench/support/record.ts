// What every bench writes besides its printout: its figures as JSON, with what is needed to
// rerun them and to judge them (commit, date, load average before and after, the machine, the
// command). BENCHMARKS.md's table is generated from these files (bench/table.ts), so a figure
// in the table always has a file, and the file a command.
//
// `npm run bench -- --quick` (LSBENCH_QUICK=1) runs every bench at a reduced size: its files go
// to bench/results/quick/ (not committed), never over the full runs the table is made of.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

export const root = new URL('../..', import.meta.url).pathname;
export const RESULTS = join(root, 'bench/results');
export const QUICK_RESULTS = join(RESULTS, 'quick');

/** A figure: a number, or a list of them (several runs, several workloads). */
export type Figure = number | string | boolean | Figure[] | { [k: string]: Figure };

export interface BenchRecord {
  bench: string;
  /** Commit the bench ran at, and whether the tree had uncommitted changes to measured code. */
  commit: string;
  dirty: boolean;
  /** ISO date (UTC) at the start and the end of the run. */
  date: string;
  endDate: string;
  /** 1-minute load average at the start and at the end (the machine may be shared). */
  load: [number, number];
  machine: { cpus: number; model: string; memGiB: number; kernel: string; node: string };
  /** How to rerun it: the command and the environment settings that change what it measures. */
  command: string;
  quick: boolean;
  figures: Record<string, Figure>;
}

export const quick = process.env.LSBENCH_QUICK === '1';

/** The full size, or the quick one under `--quick`; an explicit environment setting wins. */
export function size(env: string, full: number, reduced: number): number {
  const v = process.env[env];
  if (v !== undefined && v !== '') return Number(v);
  return quick ? reduced : full;
}

/** Environment variables that change what a bench measures (recorded with its command). */
const SETTINGS = /^(LSBENCH_(?!QUICK$|CHILD_OUT$|PATTERN$|KEEP$)|ATTACH_BENCH_|APACHE_BENCH_|POOL_BENCH_|VERDICTS_(?!DIR$)|HT_|LINES$|NGX_LINES$)/;

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/** What the figures may depend on: the code measured, the benches and what they use of the tests. */
const MEASURED = ['src', 'native', 'web', 'profiles', 'bench', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json',
  'test/programs', 'test/fixtures', 'test/support', 'test/attach/servers.ts', 'test/luajit/nginx-server.ts', 'test/unwind/harness.ts', 'test/browser/chromium.ts'];

/** Uncommitted changes to what the figures depend on (the records themselves aside). */
function dirtyTree(): boolean {
  return git(['status', '--porcelain', '--', ...MEASURED, ':!bench/results'])
    .split('\n')
    .some((l) => l.trim() !== '');
}

export interface BenchRun {
  /** Writes the record (bench/results/NAME.json, or quick/NAME.json) and returns its path. */
  finish(figures: Record<string, Figure>): string;
}

/** Call at the start of a bench: takes the load average and the date now. */
export function startBench(name: string): BenchRun {
  const date = new Date().toISOString();
  const load0 = loadavg()[0]!;
  const settings = Object.entries(process.env)
    .filter(([k, v]) => SETTINGS.test(k) && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const command = [...settings, `npm run bench --${quick ? ' --quick' : ''} ${name}`].join(' ');
  return {
    finish(figures) {
      const rec: BenchRecord = {
        bench: name,
        commit: git(['rev-parse', '--short=10', 'HEAD']) || 'unknown',
        dirty: dirtyTree(),
        date,
        endDate: new Date().toISOString(),
        load: [round(load0), round(loadavg()[0]!)],
        machine: {
          cpus: cpus().length,
          model: cpus()[0]?.model.trim() ?? 'unknown',
          memGiB: round(totalmem() / 2 ** 30),
          kernel: release(),
          node: process.version,
        },
        command,
        quick,
        figures,
      };
      const dir = quick ? QUICK_RESULTS : RESULTS;
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `${name}.json`);
      // Whole or not at all: a bench killed while writing leaves the previous record.
      writeFileSync(`${path}.tmp`, JSON.stringify(rec, null, 2) + '\n');
      renameSync(`${path}.tmp`, path);
      console.log(`figures written to ${path.slice(root.length)} (load average ${rec.load[0]} → ${rec.load[1]})`);
      return path;
    },
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Every record in a directory, by bench name. */
export function readRecords(dir: string): Map<string, BenchRecord> {
  const out = new Map<string, BenchRecord>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return out;
  }
  for (const f of names) {
    const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchRecord;
    out.set(rec.bench, rec);
  }
  return out;
}
