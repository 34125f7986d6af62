// `--min-age` values: a duration with a unit ('500ms', '30s', '5m', '2h', '1d') for traces with a
// clock, or a bare number of events for traces whose clock is an event sequence.

import type { Clock } from '../model/events.js';
import { UserError } from '../errors.js';

export interface Age {
  value: number;
  unit: 'ns' | 'events';
}

const NS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };

export function parseAge(text: string): Age {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new UserError(`--min-age "${text}": expected a duration such as 30s, 5m, 2h (or a number of events for logs without a clock)`);
  const v = Number(m[1]);
  return m[2] ? { value: v * NS[m[2]]!, unit: 'ns' } : { value: v, unit: 'events' };
}

/** The age in the trace's clock units; a duration on an event clock (or the reverse) is an error. */
export function ageInClock(age: Age | number, clock: Clock): number {
  if (typeof age === 'number') return age;
  if (age.unit === 'ns' && clock === 'seq') {
    throw new UserError('--min-age: this input has no clock (its times count events); give a number of events, e.g. --min-age 5000');
  }
  if (age.unit === 'events' && clock === 'ns') {
    throw new UserError('--min-age: give a duration with a unit (e.g. 30s, 5m, 2h) for this trace');
  }
  return age.value;
}
