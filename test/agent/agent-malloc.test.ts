// `leakscope agent` on plain malloc: the in-kernel aggregate mode (chosen by itself for a
// target without pools), targets found by systemd unit (a cgroup of ours) and by process name,
// and names from the traced process — an executable called `mleak"<b>&x<i>` — kept intact but
// escaped in the metrics and the live page, which a browser draws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { buildProgram, stop, tempDir } from '../attach/helpers.js';
import { freePort } from '../support/ports.js';
import { get, parseMetrics, startAgent, until, type AgentRun } from './support.js';
import { launch } from '../browser/chromium.js';


function startLeaker(exe: string): Promise<ChildProcess> {
  const child = spawn(exe, [], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${exe} exited (${code})`)));
  });
}

test('agent, aggregate mode: a malloc leak found by site, by unit and by process name; names escaped', { timeout: 120_000 }, async () => {
  const dir = tempDir('agent-malloc');
  // buildProgram builds test/programs/NAME.c into dir/NAME
  mkdirSync(join(dir, 'agent'));
  const built = buildProgram('agent/agent-mleak', dir);
  const evil = join(dir, 'mleak"<b>&x<i>');
  copyFileSync(built, evil);
  // a name of this run's own (a process name is the machine's: another copy of the suite runs
  // its own leaker at the same time), within comm's 15 bytes
  const name = `mleak${process.pid}`;
  const byName = join(dir, name);
  copyFileSync(built, byName);
  const unit = `leakscope-test-${process.pid}.service`;
  const cgroup = join('/sys/fs/cgroup/unified', unit);
  mkdirSync(cgroup);
  let a: ChildProcess | undefined;
  let b: ChildProcess | undefined;
  let agent: AgentRun | undefined;
  try {
    a = await startLeaker(evil);
    writeFileSync(join(cgroup, 'cgroup.procs'), String(a.pid));
    b = await startLeaker(byName);
    const port = await freePort();
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `listen: 127.0.0.1:${port}
sample: 500ms
window: 30s
targets:
  - name: unit
    unit: ${unit}
  - name: byname
    process: ${name}
`);
    agent = await startAgent(['--config', config]);
    const leakOf = async (target: string) => {
      const text = (await get(port, '/metrics')).body.toString();
      const ms = parseMetrics(text);
      const v = ms.find((s) => s.name === 'leakscope_site_growth_verdict' && s.labels.target === target && s.labels.site === 'keep_block' && s.labels.verdict === 'leak');
      return v?.value === 1 ? { text, ms } : undefined;
    };
    const { text, ms } = await until('keep_block leaking in both targets', 60000, async () => {
      const u = await leakOf('unit');
      return u && (await leakOf('byname')) ? u : undefined;
    });
    for (const target of ['unit', 'byname']) {
      const info = ms.find((s) => s.name === 'leakscope_target_info' && s.labels.target === target);
      assert.equal(info?.labels.mode, 'aggregate', `${target}: malloc alone is traced in the kernel's table`);
      assert.equal(info?.labels.allocator, 'libc');
      const slope = ms.find((s) => s.name === 'leakscope_site_growth_slope_bytes_per_second' && s.labels.target === target && s.labels.site === 'keep_block');
      assert.ok(slope && slope.value > 0, `${target} slope ${slope?.value}`);
      // churn_block frees all it makes: never a leak
      const churn = ms.filter((s) => s.name === 'leakscope_site_growth_verdict' && s.labels.site === 'churn_block' && s.labels.verdict === 'leak' && s.value === 1);
      assert.deepEqual(churn, []);
    }
    const procs = ms.filter((s) => s.name === 'leakscope_process_outstanding_bytes');
    assert.deepEqual(procs.map((p) => p.labels.pid).sort(), [String(a.pid), String(b.pid)].sort());
    // the traced name, intact once the exposition's escapes are undone, and escaped in it
    assert.equal(procs.find((p) => p.labels.target === 'unit')?.labels.exe, evil);
    assert.ok(text.includes(`exe="${evil.replace(/"/g, '\\"')}"`), 'a quote in a label is escaped');
    // the live page carries the name only inside escaped JSON
    const page = (await get(port, '/?target=unit')).body.toString();
    assert.ok(!page.includes('<b>&x<i>'), 'no markup from the traced process in the page');
    assert.ok(page.includes('\\u003cb\\u003e\\u0026x\\u003ci\\u003e'), 'the name is there, escaped');
    // the page works in a browser: the report's own code draws it, no script error
    const { browser, close } = await launch();
    try {
      const p = await browser.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(e.message));
      p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      await p.goto(`http://127.0.0.1:${port}/?target=unit`);
      await p.waitForSelector('#flame svg g.frame');
      assert.match(await p.textContent('#summary') ?? '', /keep_block/);
      assert.ok(await p.$('#flame g.frame[name="keep_block"]'), 'keep_block in the flame graph');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
    // the heap profile: keep_block holds the most
    const prof = Profile.decode(gunzipSync((await get(port, `/debug/pprof/heap?pid=${a.pid}`)).body));
    const strings = prof.stringTable.strings;
    const inuse = prof.sampleType.findIndex((t) => strings[Number(t.type)] === 'inuse_space');
    const fnOf = new Map(prof.function.map((f) => [Number(f.id), strings[Number(f.name)]]));
    const locFn = new Map(prof.location.map((l) => [Number(l.id), fnOf.get(Number(l.line[0]!.functionId))]));
    const top = [...prof.sample].sort((x, y) => Number(y.value[inuse]) - Number(x.value[inuse]))[0]!;
    assert.equal(locFn.get(Number(top.locationId[0])), 'keep_block');
    // a target that exits is a metric and a log line; the agent goes on
    stop(b);
    await until('the log line of byname gone', 15000, async () => (/target byname: no process left/.test(agent!.stderr()) ? true : undefined));
    // the metric says so as soon as the log does, not at the next sample
    const up = parseMetrics((await get(port, '/metrics')).body.toString()).find((s) => s.name === 'leakscope_target_up' && s.labels.target === 'byname');
    assert.equal(up?.value, 0, 'leakscope_target_up once the agent logged the target gone');
  } catch (err) {
    process.stderr.write(`agent's log:\n${agent?.stderr() ?? ''}\n`);
    throw err;
  } finally {
    await agent?.stop();
    stop(a);
    stop(b);
    await new Promise((r) => setTimeout(r, 300));
    try {
      rmdirSync(cgroup);
    } catch {
      // still busy: the process is going
    }
  }
  assert.equal(await agent!.exited, 0, agent!.stderr());
});
