// Trend statistics for growth verdicts: Mann–Kendall (with the tie correction) and Theil–Sen.

export interface MannKendall {
  s: number;
  z: number;
  /** Two-sided p-value of "no monotonic trend". */
  p: number;
  /** Kendall's tau-a: S over the number of pairs. */
  tau: number;
}

export function mannKendall(y: readonly number[]): MannKendall {
  const n = y.length;
  if (n < 2) return { s: 0, z: 0, p: 1, tau: 0 };
  let s = 0;
  for (let i = 0; i < n - 1; i++) {
    const yi = y[i]!;
    for (let j = i + 1; j < n; j++) {
      const d = y[j]! - yi;
      if (d > 0) s++;
      else if (d < 0) s--;
    }
  }
  // Variance with ties: n(n-1)(2n+5) minus the same over each group of equal values, over 18.
  const counts = new Map<number, number>();
  for (const v of y) counts.set(v, (counts.get(v) ?? 0) + 1);
  let ties = 0;
  for (const t of counts.values()) if (t > 1) ties += t * (t - 1) * (2 * t + 5);
  const variance = (n * (n - 1) * (2 * n + 5) - ties) / 18;
  let z = 0;
  if (variance > 0) {
    if (s > 0) z = (s - 1) / Math.sqrt(variance);
    else if (s < 0) z = (s + 1) / Math.sqrt(variance);
  }
  const p = Math.min(1, 2 * normalUpperTail(Math.abs(z)));
  return { s, z, p, tau: s / ((n * (n - 1)) / 2) };
}

/** Median of the pairwise slopes (y per unit of x); pairs with equal x are skipped. */
export function theilSen(x: readonly number[], y: readonly number[]): number {
  const slopes: number[] = [];
  const n = x.length;
  for (let i = 0; i < n - 1; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = x[j]! - x[i]!;
      if (dx !== 0) slopes.push((y[j]! - y[i]!) / dx);
    }
  }
  if (slopes.length === 0) return 0;
  slopes.sort((a, b) => a - b);
  const m = slopes.length >> 1;
  return slopes.length % 2 ? slopes[m]! : (slopes[m - 1]! + slopes[m]!) / 2;
}

/** P(Z > z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

function erfc(x: number): number {
  // Numerical Recipes' erfcc: fractional error below 1.2e-7 everywhere, good in the far tail.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z - 1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
        t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * Mann–Kendall within blocks (the seasonal Mann–Kendall test): S and its variance summed over
 * the blocks, so a shift of level between blocks does not count, only the trend inside them.
 */
export function mannKendallWithin(blocks: readonly (readonly number[])[]): MannKendall {
  let s = 0;
  let variance = 0;
  let pairs = 0;
  for (const y of blocks) {
    const n = y.length;
    if (n < 2) continue;
    for (let i = 0; i < n - 1; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = y[j]! - y[i]!;
        if (d > 0) s++;
        else if (d < 0) s--;
      }
    }
    const counts = new Map<number, number>();
    for (const v of y) counts.set(v, (counts.get(v) ?? 0) + 1);
    let ties = 0;
    for (const t of counts.values()) if (t > 1) ties += t * (t - 1) * (2 * t + 5);
    variance += (n * (n - 1) * (2 * n + 5) - ties) / 18;
    pairs += (n * (n - 1)) / 2;
  }
  let z = 0;
  if (variance > 0) {
    if (s > 0) z = (s - 1) / Math.sqrt(variance);
    else if (s < 0) z = (s + 1) / Math.sqrt(variance);
  }
  return { s, z, p: Math.min(1, 2 * normalUpperTail(Math.abs(z))), tau: pairs > 0 ? s / pairs : 0 };
}

export interface ChangePoint {
  /** The last index of the part before the change. */
  at: number;
  /** Pettitt's K: the largest |U_t|. */
  k: number;
  /** Approximate p-value of "no change point". */
  p: number;
}

/**
 * Pettitt's test: the single point where the series most likely shifted level, U_t summing
 * sgn(y_j - y_i) over the pairs that straddle t (the rank statistic behind Mann–Kendall, split).
 */
export function pettitt(y: readonly number[]): ChangePoint {
  const n = y.length;
  if (n < 2) return { at: 0, k: 0, p: 1 };
  // U_t = U_{t-1} + sum_j sgn(y_t - y_j): O(n²), n <= 128 points.
  let u = 0;
  let best = 0;
  let at = 0;
  for (let t = 0; t < n - 1; t++) {
    const yt = y[t]!;
    for (let j = 0; j < n; j++) {
      const d = yt - y[j]!;
      u -= d > 0 ? 1 : d < 0 ? -1 : 0;
    }
    if (Math.abs(u) > best) {
      best = Math.abs(u);
      at = t;
    }
  }
  const p = Math.min(1, 2 * Math.exp((-6 * best * best) / (n ** 3 + n ** 2)));
  return { at, k: best, p };
}
