// What ships beside the agent (deploy/): the alert rules pass promtool, the Grafana dashboard
// asks only for metrics the agent exports (and each panel for one), the systemd unit passes
// systemd-analyze; docs/agent.md's scrape config is one Prometheus accepts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, tempDir } from '../attach/helpers.js';
import { agentRegistry } from '../../src/agent/metrics.js';

const dir = tempDir('agent-deploy');

async function exportedNames(): Promise<Set<string>> {
  const reg = agentRegistry({ watches: [], samples: 0, lastSampleSeconds: 0, seriesHeld: () => 0 });
  const names = new Set<string>();
  for (const m of await reg.getMetricsAsJSON()) {
    names.add(m.name);
    // counters are exposed with _total; histograms with _bucket/_sum/_count
    const type = String(m.type);
    if (type === 'counter' && !m.name.endsWith('_total')) names.add(`${m.name}_total`);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(leakscope_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

test('alert rules: promtool accepts them; they use exported metrics only', async () => {
  const file = join(root, 'deploy/prometheus/leakscope-alerts.yml');
  const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
  const names = await exportedNames();
  const exprs = [...readFileSync(file, 'utf8').matchAll(/expr: (.*)/g)].map((m) => m[1]!);
  assert.ok(exprs.length >= 5);
  for (const e of exprs) for (const m of metricsIn(e)) assert.ok(names.has(m), `${m} (in ${e}) is exported`);
  // what the issue asks of them: a leak verdict held, a slope threshold, the agent's event loss
  const text = readFileSync(file, 'utf8');
  assert.match(text, /verdict="leak"/);
  assert.match(text, /slope_bytes_per_second >/);
  assert.match(text, /leakscope_events_lost_total/);
});

test('Grafana dashboard: valid JSON, per host, process and pool class; exported metrics only', async () => {
  const dash = JSON.parse(readFileSync(join(root, 'deploy/grafana/leakscope-dashboard.json'), 'utf8')) as {
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string }[] };
  };
  assert.deepEqual(dash.templating.list.map((v) => v.name), ['datasource', 'instance', 'target']);
  const names = await exportedNames();
  const panels = dash.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 10);
  for (const p of panels) {
    assert.ok(p.targets?.length, `${p.title} has a query`);
    for (const t of p.targets!) {
      const used = metricsIn(t.expr);
      assert.ok(used.length > 0, `${p.title}: ${t.expr}`);
      for (const m of used) assert.ok(names.has(m), `${p.title}: ${m} is exported`);
    }
  }
  const all = panels.flatMap((p) => p.targets!.map((t) => t.expr)).join('\n');
  for (const m of ['leakscope_process_outstanding_bytes', 'leakscope_pool_class_outstanding_bytes', 'leakscope_site_outstanding_bytes', 'leakscope_agent_process_cpu_seconds_total']) assert.ok(all.includes(m), m);
});

test('systemd unit: systemd-analyze verify accepts it', () => {
  const unit = readFileSync(join(root, 'deploy/systemd/leakscope-agent.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/leakscope agent --config \/etc\/leakscope\/agent\.yaml$/m);
  // the unit names where npm installs the command; check it with one that exists here
  const copy = join(dir, 'leakscope-agent.service');
  writeFileSync(copy, unit.replace('/usr/local/bin/leakscope', `${process.execPath} ${join(root, 'dist/cli/main.js')}`));
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', r.stderr);
});

test('docs: the scrape config for many hosts is one Prometheus accepts', () => {
  const doc = readFileSync(join(root, 'docs/agent.md'), 'utf8');
  const m = /```yaml\n(# prometheus\.yml[\s\S]*?)```/.exec(doc);
  assert.ok(m, 'docs/agent.md has a prometheus.yml example');
  const conf = join(dir, 'prometheus.yml');
  writeFileSync(conf, m[1]!.replace(/\/etc\/prometheus\/(\S+)/g, (_, f: string) => join(dir, f)));
  writeFileSync(join(dir, 'leakscope-token'), 'x'.repeat(32));
  writeFileSync(join(dir, 'leakscope-alerts.yml'), readFileSync(join(root, 'deploy/prometheus/leakscope-alerts.yml')));
  writeFileSync(join(dir, 'leakscope-hosts.yml'), '- targets: ["web1:9464", "web2:9464"]\n');
  const r = spawnSync('promtool', ['check', 'config', conf], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});
