// The leakscope CLI with only the report commands registered (as src/cli/main.ts registers
// them), so these tests do not depend on other commands' modules.
import { Command } from 'commander';
import { register as report } from '../../src/cli/commands/report.js';
import { register as exportCmd } from '../../src/cli/commands/export.js';
import { register as diff } from '../../src/cli/commands/diff.js';
import { register as mark } from '../../src/cli/commands/mark.js';

const program = new Command();
program
  .name('leakscope')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (str, write) => write(`leakscope: ${str.replace(/^error: /, '')}`) });
for (const reg of [report, exportCmd, diff, mark]) reg(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`leakscope: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
});
