// Runs only the attach command (the test helper's way to exercise our CLI code in isolation of
// the other commands' registration).
import { Command } from 'commander';
import { register } from '../../src/cli/commands/attach.js';

const program = new Command();
program.name('leakscope').exitOverride((err) => { process.exitCode = err.exitCode; throw err; });
register(program);
await program.parseAsync(process.argv).catch(() => { process.exitCode ||= 2; });
