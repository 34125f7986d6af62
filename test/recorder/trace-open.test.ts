// The recorder opens its trace file itself (LEAKSCOPE_TRACE: `leakscope run` creates it, exec'd
// images reopen it): never through a symbolic link, never into anything but a plain file, so a
// user who can write to the trace's directory cannot make a root-run program append elsewhere.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildRecorder, root, workDir } from './harness.js';

const LIB = join(root, 'native', 'recorder', 'build', 'libleakscope.so');

function traced(trace: string): { status: number | null; stderr: string } {
  const r = spawnSync('/bin/true', [], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: LIB, LEAKSCOPE_TRACE: trace } });
  return { status: r.status, stderr: r.stderr };
}

describe('recorder trace file', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('trace-open');
  });

  it('refuses a symbolic link (dangling or not) and a FIFO, says so once, and the program runs on', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o600 });
    const link = join(dir, 'link.lstrace');
    symlinkSync(victim, link);
    const r = traced(link);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /^leakscope: cannot open trace .*link\.lstrace: it is a symbolic link \(not recording\)\n$/);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    const dangling = join(dir, 'dangling.lstrace');
    symlinkSync(join(dir, 'nowhere'), dangling);
    assert.match(traced(dangling).stderr, /symbolic link/);
    assert.throws(() => statSync(join(dir, 'nowhere')), 'nothing created through the link');
    const fifo = join(dir, 'fifo.lstrace');
    execFileSync('mkfifo', [fifo]);
    const f = traced(fifo);
    assert.equal(f.status, 0, 'the open of a FIFO without a reader does not hang the program');
    assert.match(f.stderr, /cannot open trace .*fifo\.lstrace/);
  });

  it('writes a plain file it creates, with the header', () => {
    const trace = join(dir, 'plain.lstrace');
    const r = traced(trace);
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '');
    assert.equal(readFileSync(trace).subarray(0, 8).toString('latin1'), 'LSTRACE1');
  });
});
