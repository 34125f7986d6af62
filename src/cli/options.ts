// One parser per kind of option value, so every command checks and words them alike: a name
// from a table (--format, --to, --mode: commander's choices), a whole number in a range (--top,
// --pid, --depth: its argParser), a duration (--duration, --interval). A bad value is commander's
// usage error: one line naming the option and the value, exit 2 (cli/main.ts).

import { InvalidArgumentError, Option } from 'commander';
import { parseDurationMs } from '../model/units.js';

/** Largest process id Linux hands out (pid_max's ceiling, 2^22). */
export const MAX_PID = 2 ** 22;

/** An option taking one of `choices` (a format table's names: reports/formats.ts). */
export function choiceOption(flags: string, description: string, choices: readonly string[], defaultValue?: string): Option {
  const o = new Option(flags, description).choices(choices);
  return defaultValue === undefined ? o : o.default(defaultValue);
}

/** A whole number from `min` to `max`, or the usage error every such option gives. */
export function parseWhole(text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
  }
  return n;
}

/** An option taking a whole number from `min` to `max` (the value is a number). */
export function intOption(flags: string, description: string, min: number, max: number, defaultValue?: number): Option {
  const o = new Option(flags, description).argParser((v: string) => parseWhole(v, min, max));
  return defaultValue === undefined ? o : o.default(defaultValue);
}

/** An option taking a process id. */
export function pidOption(flags: string, description: string): Option {
  return intOption(flags, description, 1, MAX_PID);
}

/** A duration (30s, 5m, 1500ms; a bare number is seconds) of at least `minMs`, in milliseconds. */
export function parseDuration(text: string, minMs = 1): number {
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < minMs) {
    throw new InvalidArgumentError(`It must be a duration such as 30s, 5m or 1500ms${minMs > 1 ? ` of at least ${minMs} ms` : ''}.`);
  }
  return ms;
}

/** An option taking a duration (the value is milliseconds); `defaultText` is shown in --help. */
export function durationOption(flags: string, description: string, opts: { minMs?: number; defaultText?: string } = {}): Option {
  const o = new Option(flags, description).argParser((v: string) => parseDuration(v, opts.minMs));
  return opts.defaultText === undefined ? o : o.default(parseDuration(opts.defaultText, opts.minMs), opts.defaultText);
}
