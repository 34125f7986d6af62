// Writing a command's output file: atomically, with a failure said in one line.

import { writeFileAtomic } from '../reports/atomic-write.js';
import { UserError } from '../errors.js';

const WHY: Record<string, string> = {
  ENOENT: 'no such directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory; give a file name',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for this file system or the file size limit (ulimit -f)',
  EROFS: 'read-only file system',
};

/** A write error as a UserError naming the file and what to do; other errors unchanged. */
export function outputError(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!code) return err;
  return new UserError(`${path}: cannot write (${WHY[code] ?? code}); nothing was written, choose another output file`);
}

export async function writeOutput(path: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomic(path, data).catch((err: unknown) => {
    throw outputError(path, err);
  });
}
