// A UserError is a problem with the user's input or machine: the CLI prints its message as one
// line and exits non-zero, never with a stack trace.

export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** What an errno means to a user, in a few words. */
const ERRNO: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENXIO: 'no such device or address',
  EIO: 'input/output error',
  ENODEV: 'no such device',
  ETXTBSY: 'text file busy',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOTDIR: 'a part of the path is not a directory',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on the system',
};

/** An error reading an input file as a UserError (exit 2) naming the input; other errors unchanged. */
export function inputError(path: string, err: unknown): unknown {
  if (err instanceof UserError) return err;
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return err;
  // Only errors of reading (a write error of a sink is the output's, not the input's).
  if (e.syscall && !['open', 'read', 'stat', 'fstat', 'lstat', 'scandir'].includes(e.syscall)) return err;
  if (e.code === 'ENOENT') return new UserError(`${path}: no such file`);
  return new UserError(`${path}: cannot read (${ERRNO[e.code] ?? e.code}); check the file and its permissions`);
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
