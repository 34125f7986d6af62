// `attach --stack-bytes 0`: no user stack is copied, so a binary without frame pointers gets the
// exact immediate caller and nothing more; with the default copy the same site has its whole
// stack down to main. On a program that allocates until told to stop (test/programs/rec-churn.c:
// churn_block keeps one block in 1000), traced with --allocator libc until the trace holds
// 12,000 of its allocations, each way.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { root } from '../support/cli.js';
import { attachInBackground, untilTrace } from './helpers.js';

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
  let runs = 0;
  const site = async (extra: string[]) => {
    // traced until the trace holds 12,000 of its allocations (12 blocks kept at least), then
    // stopped: the amount traced is what the tracer saw, not what a few seconds allowed
    const trace = join(dir, `churn-${runs++}.lstrace`);
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', 'libc', '-o', trace, '--format', 'json', ...extra]);
    await run.started;
    await untilTrace(trace, () => {
      let n = 0;
      return { event: (e) => { if (e.kind === 'alloc' && e.pid === child.pid) n++; }, enough: () => n >= 12_000 };
    }, '12,000 allocations');
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as AnalysisResult;
    const p = res.processes.find((x) => x.pid === child.pid);
    assert.ok(p, r.stdout.slice(0, 2000));
    const s = p.sites.find((x) => x.stack[0]?.fn === 'churn_block');
    assert.ok(s, `no churn_block site: ${p.sites.map((x) => x.label).join(', ')}`);
    assert.ok(s.count >= 10, `${s.count} blocks kept of 12,000 allocations`);
    return s;
  };
  const bare = await site(['--stack-bytes', '0']);
  const full = await site([]);
  assert.deepEqual(bare.stack.map((f) => f.fn), ['churn_block'], 'the immediate caller, and no guess beyond it (no frame pointers)');
  assert.match(bare.stack[0]!.file, /rec-churn\.c$/);
  assert.equal(bare.stack[0]!.line, full.stack[0]!.line, 'the same exact caller line as with the stack copy');
  assert.deepEqual(full.stack.slice(0, 2).map((f) => f.fn), ['churn_block', 'main']);
});
