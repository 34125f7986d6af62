// Progress of long work (reading big inputs), as the caller wants it shown. The library only
// reports how far it got, through the StartProgress it is given; the CLI gives one that draws a
// bar on a terminal (cli/progress.ts). Library code draws nothing itself.

export interface Progress {
  /** Units done so far. */
  update(done: number): void;
  stop(): void;
}

/** Starts showing the progress of one piece of work of `total` units (bytes unless `unit` says). */
export type StartProgress = (label: string, total: number | undefined, unit?: string) => Progress;

export const noProgress: Progress = { update() {}, stop() {} };
