// `leakscope doctor` — says what will and will not work on this machine (and for a target), and why.
// Registered by commands/doctor.ts, which loads this module only when the command runs.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { runDoctor } from '../../doctor/doctor.js';
import { renderDoctor } from '../../doctor/render.js';
import { PACKAGE_ROOT } from '../../native/locate.js';

export interface DoctorOpts {
  pid?: string;
  exe?: string;
  format: string;
}

export function doctorCommand(o: DoctorOpts): void {
  if (o.format !== 'text' && o.format !== 'json') throw new UserError(`--format: expected text or json, got ${o.format}`);
  if (o.pid !== undefined && o.exe !== undefined) throw new UserError('give --pid or --exe, not both');
  if (o.pid !== undefined && !/^[1-9]\d*$/.test(o.pid)) throw new UserError(`--pid: not a process id: ${o.pid}`);
  const exe = o.exe === undefined ? undefined : resolve(o.exe);
  if (exe && !existsSync(exe)) throw new UserError(`--exe: ${exe}: no such file`);
  const report = runDoctor({ root: PACKAGE_ROOT, target: o.pid !== undefined ? { pid: Number(o.pid) } : exe ? { exe } : undefined });
  process.stdout.write(o.format === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderDoctor(report));
  process.exitCode = report.ok ? 0 : 1;
}
