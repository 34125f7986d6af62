// A UserError is a problem with the user's input or machine: the CLI prints its message as one
// line and exits non-zero, never with a stack trace.

export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

export function describeError(err: unknown): string {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && e.code === 'ENOENT' && e.path) return `${e.path}: no such file`;
  if (e && typeof e === 'object' && e.code === 'EACCES' && e.path) return `${e.path}: permission denied`;
  if (e && typeof e === 'object' && e.code === 'EISDIR' && e.path) return `${e.path}: is a directory, expected a file`;
  // One line whatever the message holds (a module's syntax error can span several).
  const msg = (e instanceof Error ? e.message : String(err)).replace(/\s*\n\s*/g, ' ');
  return `internal error: ${msg} (please report this)`;
}
