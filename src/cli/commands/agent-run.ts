// `leakscope agent` — the command: reads the config and flags, checks it can trace, starts the
// agent and runs it until SIGINT or SIGTERM.
// Registered by commands/agent.ts, which loads this module only when the command runs.

import { UserError } from '../errors.js';
import { Agent } from '../../agent/agent.js';
import { agentConfig, type AgentFlags } from '../../agent/flags.js';
import { checkExposure } from '../../agent/server.js';
import { Log } from '../../agent/log.js';
import { describeTarget } from '../../agent/targets.js';

export async function agentCommand(o: AgentFlags & { check?: boolean }): Promise<void> {
  const cfg = agentConfig(o);
  checkExposure(cfg);
  if (o.check) {
    process.stdout.write(`config ok: ${cfg.targets.length} target(s), listening on ${cfg.listen.host}:${cfg.listen.port}\n`);
    return;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new UserError('the agent needs root (CAP_BPF and CAP_PERFMON) to load uprobes; run it as root (deploy/systemd/leakscope-agent.service)');
  const log = new Log();
  const agent = new Agent(cfg, log);
  await agent.start();
  const scheme = cfg.tls ? 'https' : 'http';
  log.info(`serving ${scheme}://${cfg.listen.host.includes(':') ? `[${cfg.listen.host}]` : cfg.listen.host}:${agent.port}/metrics${cfg.token ? ' (bearer token required)' : ''}${agent.webUid !== undefined ? ` (HTTP side as user ${cfg.user}, uid ${agent.webUid})` : ' (HTTP side in the agent, as root)'}; ${cfg.targets.map((t) => `${t.name}: ${describeTarget(t)}`).join('; ')}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping');
  await agent.stop();
}
