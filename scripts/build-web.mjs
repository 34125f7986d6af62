// Bundles the report page's browser code (web/) with its libraries (uPlot, d3-flame-graph) into
// dist/web/report.js and dist/web/report.css, which `leakscope report` inlines into each page.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(join(root, 'package.json'));

export async function bundleWeb() {
  const r = await build({
    entryPoints: [join(root, 'web', 'report.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari15'],
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    // d3-flame-graph imports its stylesheet; we inline it with the others below.
    loader: { '.css': 'empty' },
  });
  const js = r.outputFiles[0].text;
  const css = [
    readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    readFileSync(join(dirname(require.resolve('d3-flame-graph')), 'd3-flamegraph.css'), 'utf8'),
    readFileSync(join(root, 'web', 'report.css'), 'utf8'),
  ].join('\n');
  return { js, css };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { js, css } = await bundleWeb();
  const out = join(root, 'dist', 'web');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'report.js'), js);
  writeFileSync(join(out, 'report.css'), css);
  console.log(`web: dist/web/report.js ${(js.length / 1024).toFixed(0)} KiB, report.css ${(css.length / 1024).toFixed(0)} KiB`);
}
