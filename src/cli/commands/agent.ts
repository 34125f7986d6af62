// `leakscope agent` — watches servers continuously (every host, for days) and serves Prometheus
// metrics, a pprof heap profile and a live report over HTTP.
// The implementation (agent-run.ts) is loaded only when the command runs.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { loadCommand } from '../lazy.js';
import type { AgentFlags } from '../../agent/flags.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').filter(Boolean)];
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('watch servers continuously: Prometheus /metrics, pprof /debug/pprof/heap and a live report at / (docs/agent.md)')
    .option('-c, --config <file>', 'YAML or JSON config (targets, listen address, auth, limits, segments)')
    .option('--exe <path>', 'watch every process running this executable (repeatable)', collect)
    .option('--process <name>', 'watch every process of this name, as in /proc/PID/comm (repeatable)', collect)
    .option('--unit <unit>', 'watch every process of this systemd unit (its cgroup; repeatable)', collect)
    .option('-p, --pid <pid>', 'watch this process and its descendants (repeatable)', collect)
    .option('-a, --allocator <name|file>', 'allocator profile(s) for the targets given as flags (default: chosen from their symbols)', collect)
    .option('-l, --listen <host:port>', 'where to serve (default 127.0.0.1:9464; other than loopback needs --token-file or TLS, or --insecure)')
    .option('--token-file <file>', 'require "Authorization: Bearer TOKEN" with the token in this file')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this key (PEM)')
    .option('--insecure', 'allow a non-loopback address without authentication')
    .option('--sample <time>', 'how often the targets are sampled (default 15s)')
    .option('--window <time>', 'the rolling window verdicts and slopes are computed on (default 30m)')
    .option('--top-sites <n>', 'sites (and pool classes) shown by name; the rest are summed as "other" (default 10)')
    .option('--segments <dir>', 'keep rolling trace segments in this directory (leakscope report reads them)')
    .option('--check', 'check the config and exit')
    .action(guard(async (o: AgentFlags & { check?: boolean }) => {
      // The BPF loader and unwinder are built on first use, before the agent's modules load
      // (they read the unwinder's path when loaded); what cannot be built, the agent reports.
      if (!o.check) (await loadCommand('agent', () => import('../../native/ensure.js'))).ensureNative([], ['bpf', 'unwind']);
      const { agentCommand } = await loadCommand('agent', () => import('./agent-run.js'));
      await agentCommand(o);
    }));
}
