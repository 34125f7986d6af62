// A traced process in which nothing probed was called is "no calls seen", with its traced time
// and a hint, in the JSON, the text and the HTML report — never "STEADY — No data". The real
// case: Debian's apache2 under --allocator libc (libapr takes its blocks with mmap: no malloc).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { rmSync } from 'node:fs';
import { attachInBackground, buildProgram, parseReport, stop, tempDir } from './helpers.js';
import { cliSync } from '../support/cli.js';
import { curlRequests, quiescent, childrenOf, startApache } from './servers.js';
import { freePort } from '../support/ports.js';
import { launch } from '../browser/chromium.js';

const dir = tempDir('att-nocalls');
const idle = buildProgram('att-fork', dir); // waits on stdin: calls nothing while idle
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = cliSync(args);
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

test('a process that calls nothing: "no calls seen" with its traced time and a hint, in JSON, text and HTML', async () => {
  const child = spawn(idle, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout!.once('data', () => r()));
  const trace = join(dir, 'idle.lstrace');
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', 'libc', '-o', trace, '--format', 'json', '--pool-sample', '200ms']);
    await run.started;
    const t0 = Date.now();
    // traced for 1.5 s at least: the time it is traced for is what is checked here
    await new Promise((r) => setTimeout(r, 1500));
    const t1 = Date.now();
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const p = parseReport(r).processes.find((x) => x.pid === child.pid)!;
    assert.equal(p.verdict.verdict, 'no-calls', p.verdict.explanation);
    assert.ok(p.endT - p.startT >= (t1 - t0) * 1e6, `traced ${(p.endT - p.startT) / 1e9} s, at least ${(t1 - t0) / 1e3} s expected`);
    assert.match(p.verdict.explanation, /^No allocation, free or pool call was seen in this process during the \d+\.\d s it was traced/);
    assert.match(p.hint ?? '', /leave out --allocator.*leakscope kernel/);
    assert.match(r.stderr, /warning: no probed function was called in any traced process/);

    const text = cli(['analyze', trace]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /Verdict: NO CALLS SEEN — no exit in the trace, \d+\.\d+ s traced\./);
    assert.match(text.stdout, /Hint: Its allocator may not be the one probed/);
    assert.doesNotMatch(text.stdout, /STEADY|µs traced/);

    const html = join(dir, 'idle.html');
    const h = cli(['report', trace, '-o', html]);
    assert.equal(h.status, 0, h.stderr);
    const { browser, close } = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(html).href);
      await page.waitForSelector('#summary tbody tr');
      const row = await page.$eval('#summary tbody tr', (tr) => ({ badge: tr.querySelector('.badge')!.textContent, cls: tr.querySelector('.badge')!.className, why: tr.querySelector('.why')!.textContent }));
      assert.equal(row.badge, 'no calls seen');
      assert.match(row.cls, /v-no-calls/);
      assert.match(row.why ?? '', /No allocation, free or pool call was seen.*leakscope kernel/);
      assert.doesNotMatch(row.why ?? '', /Mann–Kendall/);
    } finally {
      await close();
    }
  } finally {
    stop(child);
  }
});

test('apache2 under --allocator libc: libapr calls no malloc, so its processes are "no calls seen" with their traced time, never steady', async () => {
  const sdir = tempDir('att-nocalls-apache');
  const port = await freePort();
  const server = await startApache(sdir, port);
  try {
    const master = server.master.pid!;
    const run = attachInBackground(['--pid', String(master), '--children', '--allocator', 'libc', '--format', 'json']);
    await run.started;
    const t0 = Date.now();
    curlRequests(port, 5, 5);
    await quiescent([master, ...childrenOf(master)]);
    const t1 = Date.now();
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.ok(report.processes.length >= 3);
    let none = 0;
    for (const p of report.processes) {
      const a = p.anomalies;
      const nothing = p.allocated.count === 0 && p.allocated.frees === 0 && a.unknownFree + a.doubleFree + a.unknownRealloc + a.unknownPool + a.unknownPoolDestroy === 0;
      if (!nothing) continue;
      none++;
      assert.equal(p.verdict.verdict, 'no-calls', `process ${p.pid}: nothing seen, verdict ${p.verdict.verdict}`);
      assert.ok(p.hint);
      assert.ok(p.endT - p.startT >= (t1 - t0) * 1e6, `process ${p.pid} traced ${(p.endT - p.startT) / 1e9} s`);
    }
    // the parent at least: it serves no request
    assert.ok(none >= 1 && report.processes.find((p) => p.pid === master)!.verdict.verdict === 'no-calls');
  } finally {
    await server.stop();
    rmSync(sdir, { recursive: true, force: true });
  }
});
