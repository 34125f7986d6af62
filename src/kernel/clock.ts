// The trace clock: BPF's ktime (bpf_ktime_get_ns) and Node's hrtime are both CLOCK_MONOTONIC,
// so an event's t is its monotonic time minus the trace's startMonoNs.

export function monoNowNs(): bigint {
  return process.hrtime.bigint();
}

/** t (ns since the trace start) of a monotonic timestamp; events before the start are at 0. */
export function traceTime(monoNs: bigint, startMonoNs: bigint): number {
  const d = monoNs - startMonoNs;
  return d > 0n ? Number(d) : 0;
}
