// Sampled traces: an allocation of size s was recorded with probability 1 - exp(-s / S), so each
// recorded one stands for 1 / (1 - exp(-s / S)) allocations (an unbiased, Horvitz–Thompson estimate).

export function sampleWeight(size: number, sampleBytes: number): number {
  if (size <= 0 || sampleBytes <= 0) return 1;
  return 1 / -Math.expm1(-size / sampleBytes);
}
