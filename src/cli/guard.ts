// Wraps a command's action so that every failure becomes one line on stderr and an exit code.

import { describeError, exitCodeOf, isBrokenPipe } from './errors.js';
import { brokenPipeExit } from './stdout.js';
import { terminalSafe } from '../reports/terminal.js';

export function guard<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (isBrokenPipe(err)) brokenPipeExit();
      process.stderr.write(`leakscope: ${terminalSafe(describeError(err))}\n`);
      if (process.env.LEAKSCOPE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = exitCodeOf(err);
    }
  };
}
