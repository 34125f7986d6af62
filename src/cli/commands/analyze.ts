// `leakscope analyze` — placeholder until its issue lands; it says so and exits non-zero.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { UserError } from '../errors.js';

export function register(program: Command): void {
  program
    .command('analyze')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(guard(() => {
      throw new UserError('"analyze" is not built yet in this version of leakscope');
    }));
}
