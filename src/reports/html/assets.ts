// The report page's script and styles. `npm run build` bundles web/ into dist/web/ (scripts/
// build-web.mjs); in a source checkout run through tsx we bundle web/ on first use instead, so the
// page never lags behind its source.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../native/locate.js';

export interface WebAssets {
  js: string;
  css: string;
}

const root = PACKAGE_ROOT;
let cached: Promise<WebAssets> | undefined;

export function loadWebAssets(): Promise<WebAssets> {
  cached ??= load();
  return cached;
}

async function load(): Promise<WebAssets> {
  const built = join(root, 'dist', 'web');
  const fromSource = import.meta.url.endsWith('.ts') && existsSync(join(root, 'web', 'report.ts'));
  if (!fromSource && existsSync(join(built, 'report.js'))) {
    return { js: readFileSync(join(built, 'report.js'), 'utf8'), css: readFileSync(join(built, 'report.css'), 'utf8') };
  }
  if (!existsSync(join(root, 'web', 'report.ts'))) {
    // No web/ sources: an installed package that lost its bundle; only a reinstall brings it back.
    throw new Error(`the report page is missing from this installation (${join(built, 'report.js')}): reinstall leakscope`);
  }
  const mod = (await import(join(root, 'scripts', 'build-web.mjs'))) as { bundleWeb: () => Promise<WebAssets> };
  return mod.bundleWeb();
}
