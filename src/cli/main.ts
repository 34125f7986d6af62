#!/usr/bin/env node
// The leakscope command line: a thin shell over sources, engine, analyses and reports.
// Each command lives in its own file under commands/ and registers itself here.

import { Command } from 'commander';
import { register as analyze } from './commands/analyze.js';
import { register as info } from './commands/info.js';
import { register as importCmd } from './commands/import.js';
import { register as run } from './commands/run.js';
import { register as snapshot } from './commands/snapshot.js';
import { register as attach } from './commands/attach.js';
import { register as doctor } from './commands/doctor.js';
import { register as report } from './commands/report.js';
import { register as exportCmd } from './commands/export.js';
import { register as diff } from './commands/diff.js';
import { register as mark } from './commands/mark.js';
import { register as kernel } from './commands/kernel.js';
import { register as agent } from './commands/agent.js';
import { register as setup } from './commands/setup.js';
import { handleStdoutErrors } from './stdout.js';

handleStdoutErrors();

const program = new Command();
program
  .name('leakscope')
  .description('Find memory leaks in long-running native servers (malloc, nginx/APR pools, LuaJIT).')
  .version('0.1.0');

for (const reg of [analyze, info, importCmd, run, snapshot, attach, doctor, setup, report, exportCmd, diff, mark, kernel, agent]) reg(program);
oneLineErrors(program, 'leakscope');
for (const cmd of program.commands) oneLineErrors(cmd, `leakscope ${cmd.name()}`);

/** Commander's usage errors as one line (its suggestion folded in) that says where the usage is,
 *  and exit status 2 (commander's own is 1, which means damaged input here); help exits 0. */
function oneLineErrors(cmd: Command, usage: string): void {
  cmd.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  cmd.configureOutput({
    outputError: (str, write) => {
      const msg = str.replace(/^error: /, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' ')
        .replace('(Did you mean', '(did you mean').replace(/\.$/, '');
      write(`leakscope: ${msg}; see \`${usage} --help\`\n`);
    },
  });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`leakscope: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
});
