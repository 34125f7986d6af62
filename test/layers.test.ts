// The layers of src/ (README, "How it is built"), from the bottom:
//   model → trace/engine → sources/symbols → analyses → pipeline → reports/capture → agent → cli
// A module may import from its own layer and the layers below it, never from a layer above: the
// library works without the CLI, the engine without the analyses, the trace codec without the
// input formats. This test reads every import of src/ (static, re-exports and dynamic import())
// and fails on one that runs up a layer, or on a folder the table below does not place.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Each folder of src/ (and each file at its root) and its layer; higher layers build on lower ones. */
const LAYER: Record<string, number> = {
  // 0: what everything shares: the event model, the library's error and progress, decompression,
  // the package's files and native artifacts (where they are, building them on first use).
  model: 0, 'errors.ts': 0, 'progress.ts': 0, io: 0, native: 0,
  // 1: the trace codec, and the engine that folds events.
  trace: 1, engine: 1,
  // 2: inputs into events; symbols of binaries; the running system's processes.
  sources: 2, symbols: 2, proc: 2,
  // 3: what the folded state means.
  analyses: 3,
  // 4: files → events → engine → analyses.
  pipeline: 4,
  // 5: rendering, and capturing from live processes.
  reports: 5, attach: 5, recorder: 5, kernel: 5, luajit: 5, doctor: 5,
  // 6: the long-running agent, built on the capture and report layers.
  agent: 6,
  // 7: the command line.
  cli: 7,
};

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The layer key of a file under src/: its top folder, or its own name at the root. */
const keyOf = (file: string) => relative(src, file).split('/')[0]!;

/** Relative specifiers a module imports (type-only imports count too: they tie the layers as much). */
function imports(text: string): string[] {
  const out: string[] = [];
  // Comments could mention an import; strip them (strings holding "//" are not a concern in src/ imports).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/(?:^|[\s;])(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    if (spec.startsWith('.')) out.push(spec);
  }
  return out;
}

test('every folder of src/ has a layer', () => {
  const unplaced = readdirSync(src).filter((n) => !(n in LAYER));
  assert.deepEqual(unplaced, [], `place these in test/layers.test.ts's LAYER table (and README's "How it is built"): ${unplaced.join(', ')}`);
});

test('no import in src/ runs up a layer', () => {
  const files = walk(src);
  assert.ok(files.length > 100, `only ${files.length} files under src/`);
  const up: string[] = [];
  let seen = 0;
  for (const file of files) {
    const from = keyOf(file);
    for (const spec of imports(readFileSync(file, 'utf8'))) {
      seen++;
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      const to = keyOf(target);
      if (relative(src, target).startsWith('..')) {
        up.push(`${relative(src, file)} imports ${spec}, outside src/`);
        continue;
      }
      if (LAYER[from] === undefined || LAYER[to] === undefined) continue; // said by the test above
      if (LAYER[to]! > LAYER[from]!) up.push(`${relative(src, file)} (${from}, layer ${LAYER[from]}) imports ${spec} (${to}, layer ${LAYER[to]})`);
    }
  }
  assert.ok(seen > 300, `only ${seen} relative imports found: is the import pattern still right?`);
  assert.deepEqual(up, [], `imports that run up a layer:\n${up.join('\n')}`);
});

test('the import reader sees every form of import', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b/b.js';",
    "export { c } from './c.js';",
    'export type { D } from "./d.js";',
    "const m = await import('../e/e.js');",
    "import {\n  f,\n  g,\n} from './fg.js';",
    "import './side-effect.js';",
    "// import { no } from './commented.js';",
    "import { x } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(imports(text), ['./a.js', '../b/b.js', './c.js', './d.js', '../e/e.js', './fg.js', './side-effect.js']);
});
