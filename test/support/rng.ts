/** Deterministic pseudo-random numbers in [0, 1) (xorshift32), for benchmarks and tests that
 *  must generate the same workload every run. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}
