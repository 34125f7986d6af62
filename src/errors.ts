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
