// What every doctor check reports.

export type CheckStatus = 'ok' | 'fail' | 'warn' | 'info';
export type CheckGroup = 'system' | 'native' | 'tools' | 'target';

export interface Check {
  id: string;
  group: CheckGroup;
  status: CheckStatus;
  /** A failed required check makes `doctor` exit 1: the default path (attach) will not work. */
  required: boolean;
  title: string;
  /** Why, and what follows for leakscope. */
  detail: string;
  /** What to do about it, when something can be done. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

export function check(c: Omit<Check, 'required'> & { required?: boolean }): Check {
  return { required: false, ...c };
}
