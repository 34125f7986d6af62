// `attach --stack-bytes 0`: no user stack is copied, so a binary without frame pointers gets the
// exact immediate caller and nothing more; with the default copy the same site has its whole
// stack down to main. On a program that allocates until told to stop (test/programs/rec-churn.c:
// churn_block keeps one block in 1000), traced with --allocator libc for a few seconds each way.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { cli, root } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'leakscope-stack-bytes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('--stack-bytes 0 keeps the exact immediate caller only; the default copy gives the whole stack', { timeout: 240_000 }, async (t) => {
  const prog = join(dir, 'rec-churn');
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', prog, join(root, 'test/programs/rec-churn.c')]);
  const child = spawn(prog, [], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('churn pid')) resolve(); });
    child.once('exit', () => reject(new Error('rec-churn ended before it started')));
  });
  const site = async (extra: string[]) => {
    const r = await cli(['attach', '--pid', String(child.pid), '--allocator', 'libc', '--duration', '3s', '--format', 'json', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as AnalysisResult;
    const p = res.processes.find((x) => x.pid === child.pid);
    assert.ok(p, r.stdout.slice(0, 2000));
    const s = p.sites.find((x) => x.stack[0]?.fn === 'churn_block');
    assert.ok(s, `no churn_block site: ${p.sites.map((x) => x.label).join(', ')}`);
    assert.ok(s.count >= 10, `${s.count} blocks kept in 3 s`);
    return s;
  };
  const bare = await site(['--stack-bytes', '0']);
  const full = await site([]);
  assert.deepEqual(bare.stack.map((f) => f.fn), ['churn_block'], 'the immediate caller, and no guess beyond it (no frame pointers)');
  assert.match(bare.stack[0]!.file, /rec-churn\.c$/);
  assert.equal(bare.stack[0]!.line, full.stack[0]!.line, 'the same exact caller line as with the stack copy');
  assert.deepEqual(full.stack.slice(0, 2).map((f) => f.fn), ['churn_block', 'main']);
});
