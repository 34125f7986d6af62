// openInput + close before reading everything (as a metadata peek does) must release the input
// entirely: a zstd child left waiting for input kept the process alive forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'ls-open-close-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const open = new URL('../../src/sources/open.ts', import.meta.url).href;

test('a zstd input opened and closed early lets the process exit', () => {
  // Larger than the 64 KiB head and the pipe buffers, so zstd is still busy when we close.
  const text = Array.from({ length: 400_000 }, (_, i) => `+ ${(i % 200).toString(16)}\n`).join('');
  const plain = join(dir, 'heaptrack.x.1');
  writeFileSync(plain, `v 10000 3\n${text}`);
  const z = spawnSync('zstd', ['-q', '-f', plain, '-o', `${plain}.zst`]);
  assert.equal(z.status, 0, String(z.stderr));
  const script = `const { openInput } = await import(${JSON.stringify(open)});
    const o = await openInput(${JSON.stringify(`${plain}.zst`)});
    if (o.input.head.length !== 65536) throw new Error('head ' + o.input.head.length);
    await o.close();
    console.log('closed');`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, 'the process did not exit by itself after close()');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /closed/);
});
