// SIGUSR1 to a `leakscope attach` process drops a marker on the trace's timeline: "SIGUSR1 #N"
// (N counts the signals of this session), for every traced process (pid 0). Tracing goes on.
// Node would start its inspector on SIGUSR1; a listener replaces that, only while attached.

export interface MarkerSignal {
  /** Markers dropped so far. */
  readonly count: number;
  /** Removes the listener (SIGUSR1 then does what it did before). */
  off(): void;
}

/** Calls `mark(label)` on each SIGUSR1 until off(). */
export function onMarkerSignal(mark: (label: string) => void): MarkerSignal {
  let n = 0;
  const listener = (): void => {
    n++;
    mark(`SIGUSR1 #${n}`);
  };
  process.on('SIGUSR1', listener);
  return {
    get count() {
      return n;
    },
    off: () => {
      process.off('SIGUSR1', listener);
    },
  };
}
