// Runs every check: the machine, leakscope's native parts, tools, and optionally a target.
import { check, type DoctorReport } from './check.js';
import { nativeChecks } from './native.js';
import { packageChecks } from './packages.js';
import { missingPackages } from '../native/packages.js';
import { systemChecks } from './system.js';
import { targetChecks, type Target } from './target.js';
import { toolChecks } from './tools.js';
import { verifierChecks } from './verifier.js';

export function runDoctor(opts: { root: string; target?: Target }): DoctorReport {
  const missing = missingPackages(opts.root);
  const checks = [...systemChecks(), ...packageChecks(opts.root, missing), ...nativeChecks(opts.root, missing), ...verifierChecks(opts.root), ...toolChecks()];
  if (opts.target) checks.push(...targetChecks(opts.target));
  if (!checks.some((c) => c.group === 'native')) {
    checks.push(check({ id: 'native', group: 'native', required: true, status: 'fail', title: 'native parts: none found', detail: 'this installation has no native/ directory', fix: 'reinstall leakscope' }));
  }
  return { ok: !checks.some((c) => c.required && c.status === 'fail'), checks };
}
