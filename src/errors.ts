// The library's error: a problem with the user's input, options or machine (not a bug of ours),
// whose message is one line that says what is wrong and what to do. Every layer throws it; the
// CLI prints the message and maps the error to an exit code (src/cli/errors.ts), never a stack
// trace.

export class UserError extends Error {
  constructor(message: string) {
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

/** An error reading an input file as a UserError naming the input; other errors unchanged. */
export function inputError(path: string, err: unknown): unknown {
  if (err instanceof UserError) return err;
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return err;
  // Only errors of reading (a write error of a sink is the output's, not the input's).
  if (e.syscall && !['open', 'read', 'stat', 'fstat', 'lstat', 'scandir'].includes(e.syscall)) return err;
  if (e.code === 'ENOENT') return new UserError(`${path}: no such file`);
  return new UserError(`${path}: cannot read (${ERRNO[e.code] ?? e.code}); check the file and its permissions`);
}
