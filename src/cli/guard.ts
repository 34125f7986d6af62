// Wraps a command's action so that every failure becomes one line on stderr and an exit code.

import { describeError, exitCodeOf } from './errors.js';

export function guard<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.stderr.write(`leakscope: ${describeError(err)}\n`);
      if (process.env.LEAKSCOPE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = exitCodeOf(err);
    }
  };
}
