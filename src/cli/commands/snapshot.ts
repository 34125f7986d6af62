// `leakscope snapshot` — placeholder until its issue lands; it says so and exits non-zero.

import type { Command } from 'commander';
import { guard } from '../guard.js';
import { UserError } from '../errors.js';

export function register(program: Command): void {
  program
    .command('snapshot')
    .description('(not built yet)')
    .allowUnknownOption()
    .action(guard(() => {
      throw new UserError('"snapshot" is not built yet in this version of leakscope');
    }));
}
