// The doctor's text report: a ✓/✗ line per check, grouped, with why and what to do.
import type { Check, CheckGroup, DoctorReport } from './check.js';

const MARK: Record<Check['status'], string> = { ok: '✓', fail: '✗', warn: '!', info: '·' };
const GROUPS: [CheckGroup, string][] = [['system', 'System'], ['native', 'Native parts'], ['tools', 'Tools'], ['target', 'Target']];

export function renderDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  for (const [g, title] of GROUPS) {
    const cs = r.checks.filter((c) => c.group === g);
    if (!cs.length) continue;
    lines.push(title);
    for (const c of cs) {
      lines.push(`  ${MARK[c.status]} ${c.title}${c.required && c.status === 'fail' ? '  (needed)' : ''}`);
      for (const d of c.detail.split('\n')) lines.push(`      ${d}`);
      if (c.fix && c.status !== 'ok') lines.push(`      → ${c.fix}`);
    }
    lines.push('');
  }
  const failed = r.checks.filter((c) => c.required && c.status === 'fail');
  lines.push(r.ok
    ? 'Everything leakscope needs for attach is in place.'
    : `Not ready: ${failed.map((c) => c.title).join('; ')}.`);
  return lines.join('\n') + '\n';
}
