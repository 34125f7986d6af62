// Failed writes to stdout: a reader that went away (`| head -c1`) ends us quietly, with the
// status a program killed by SIGPIPE has (128 + 13), as `cat` and `grep` end; any other failure
// (`> /dev/full`: no space left) is one line on stderr and exit 2. Never a stack trace.

import { exitCodeOf } from './errors.js';
import { UserError } from '../errors.js';

/** Exit status of a process ended by SIGPIPE. */
export const BROKEN_PIPE_STATUS = 141;

export function brokenPipeExit(): never {
  process.exit(BROKEN_PIPE_STATUS);
}

const WHY: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (ulimit -f)',
  EIO: 'input/output error',
};

/** Installs the handlers on process.stdout (once, at start). */
export function handleStdoutErrors(): void {
  let failed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (failed) return;
    failed = true;
    if (err.code === 'EPIPE') brokenPipeExit();
    process.stderr.write(`leakscope: cannot write to stdout (${WHY[err.code ?? ''] ?? err.code ?? err.message}); the output is incomplete\n`);
    process.exit(exitCodeOf(new UserError('')));
  });
}
