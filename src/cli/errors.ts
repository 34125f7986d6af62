// How the CLI says an error: the library's UserError (src/errors.ts) as one line and exit 2, a
// command's own ExitError with its code (127/126 when `run` cannot start the command), anything
// else as an internal error (70), never with a stack trace.
// UserError is re-exported so that code written against this module before the library error
// moved to src/errors.ts still compiles (src/ itself imports it from there: test/layers.test.ts).

import { UserError } from '../errors.js';

export { UserError };

/** A UserError with an exit code of its own. */
export class ExitError extends UserError {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** The exit code for an error a command threw. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ExitError) return err.exitCode;
  return err instanceof UserError ? 2 : 70;
}

/** The reader of our stdout went away (`| head`): not an error to report. */
export function isBrokenPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'EPIPE';
}

export function describeError(err: unknown): string {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && e.code === 'ENOENT' && e.path) return `${e.path}: no such file`;
  if (e && typeof e === 'object' && e.code === 'EACCES' && e.path) return `${e.path}: permission denied`;
  if (e && typeof e === 'object' && e.code === 'EISDIR' && e.path) return `${e.path}: is a directory, expected a file`;
  if (e && typeof e === 'object' && e.code === 'ENOSPC') return 'no space left on device';
  // One line whatever the message holds (a module's syntax error can span several).
  const msg = (e instanceof Error ? e.message : String(err)).replace(/\s*\n\s*/g, ' ');
  return `internal error: ${msg} (please report this)`;
}
