// Progress for long work: a bar with counts and rate on a TTY, silence when piped.

import cliProgress from 'cli-progress';
import { noProgress } from '../progress.js';
import type { Progress, StartProgress } from '../progress.js';

/** A byte- or item-count progress bar on stderr, or nothing when stderr is not a terminal: what
 *  the commands give the library as its StartProgress. */
export const startProgress: StartProgress = (label, total, unit = 'B'): Progress => {
  if (!process.stderr.isTTY || process.env.CI || !total) return noProgress;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | eta {eta}s`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total, 0, { rate: '0' });
  let last = 0;
  return {
    update(done: number) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const rate = done / Math.max(0.001, (now - started) / 1000);
      bar.update(Math.min(done, total), { rate: Math.round(rate).toLocaleString('en') });
    },
    stop() {
      bar.stop();
    },
  };
};
