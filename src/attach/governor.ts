// The cost budget of the probes in `auto` mode (the agent's and `attach`'s): every probe hit
// stops the traced process (a trap of ~0.5-1 µs on this machine, ~3.5 µs on the older VM of
// BENCHMARKS.md, before the loader's and leakscope's own work on the record), so a busy server
// pays in proportion to its traffic. The governor measures the target's probe hits per second over a sliding interval;
// when the rate stays above the budget for the whole interval it says to drop the probes for a
// walk of the pool trees (no cost per request). The agent's watch then tries the probes again
// after a back-off (doubling while the traffic stays high): under budget then, they stay.
// `attach` decides once, over its first seconds (auto-mode.ts).
//
// The budget is an absolute rate, not a fraction of the target's CPU: a fraction is the same at
// 10 requests a second as at 10,000 (the hits per request do not change), so it would drop the
// probes of an idle server; a rate bounds what the agent takes from the host whatever the
// traffic. The target's CPU is measured beside it, to say in the log what the hits cost it.

/** The budget both use by default (hits/s across a target's processes): 10000 hits/s x ~1 µs a
 *  trap in a server here = ~10 ms/s, ~1% of one core (3.5% on the slower VM of earlier records); twice the rate that a few clients of a test or a quiet
 *  server make (4,500-5,300/s seen with apache2), so that their probes stay (docs/agent.md). */
export const DEFAULT_MAX_PROBE_RATE = 10000;

/** What a probe hit costs the traced process, for the log's estimate only, when the BPF loader
 *  could not measure it on the machine (BpfLoader.hitCostUs): the `floor` run of `npm run bench
 *  -- attach-apache` on the older 2-core VM, 3.47 µs (~1 µs on the current one). */
export const HIT_COST_US = 3.5;
/** The back-off doubles at each failed try, up to this many times the configured one. */
export const MAX_BACKOFF_FACTOR = 16;

export interface BudgetConfig {
  /** Probe hits per second across the target's processes; 0: no budget (probes always). */
  maxProbeRate: number;
  /** How long the rate must stay above the budget (each third of it) before the probes go. */
  sustainMs: number;
  /** How long the target stays in walk mode before the probes are tried again (doubling). */
  backoffMs: number;
}

interface Point {
  t: number;
  hits: number;
  cpuS: number;
}

export interface Reading {
  /** Probe hits per second over the interval. */
  rate: number;
  /** CPU seconds per second the target's processes used over it. */
  cpu: number;
  seconds: number;
}

export type Decision =
  | { to: 'walk'; reading: Reading; retryMs: number; trial: boolean }
  | { to: 'events'; reading: Reading };

export class Governor {
  private points: Point[] = [];
  private backoff: number;
  private retryAt = 0;
  /** The probes are on for a try after a back-off. */
  trial = false;
  /** The last rate measured over a whole interval (hits/s), for the metrics. */
  rate = 0;
  /** Times the target switched mode because of the budget (either way). */
  switches = 0;

  constructor(readonly cfg: BudgetConfig) {
    this.backoff = cfg.backoffMs;
  }

  /** Probes (re)started (a new session: its hit count starts again from 0); `trial` after a back-off. */
  probesOn(trial: boolean): void {
    this.points = [];
    this.rate = 0;
    this.trial = trial;
  }

  /** One reading with probes on: the session's hit count so far and the target's CPU seconds
   *  (summed over its processes). Says when to switch. */
  observe(now: number, hits: number, cpuS: number): Decision | undefined {
    const S = this.cfg.sustainMs;
    this.points.push({ t: now, hits, cpuS });
    // keep the newest point at or before the interval's start, and those after it
    while (this.points.length > 1 && this.points[1]!.t <= now - S) this.points.shift();
    const first = this.points[0]!;
    if (now - first.t < S) return undefined;
    const at = (t: number): Point => {
      let p = first;
      for (const q of this.points) if (q.t <= t) p = q;
      return p;
    };
    const marks = [first, at(now - (2 * S) / 3), at(now - S / 3), this.points[this.points.length - 1]!];
    const whole = reading(first, marks[3]!);
    this.rate = whole.rate;
    // every third of the interval above the budget, not one burst that lifts the mean
    let over = whole.rate > this.cfg.maxProbeRate;
    for (let i = 0; i < 3 && over; i++) if (marks[i + 1]!.t > marks[i]!.t && reading(marks[i]!, marks[i + 1]!).rate <= this.cfg.maxProbeRate) over = false;
    if (over) {
      const trial = this.trial;
      this.backoff = trial ? Math.min(this.backoff * 2, this.cfg.backoffMs * MAX_BACKOFF_FACTOR) : this.cfg.backoffMs;
      this.retryAt = now + this.backoff;
      this.trial = false;
      this.switches++;
      return { to: 'walk', reading: whole, retryMs: this.backoff, trial };
    }
    if (this.trial) {
      // a whole interval under budget: the probes stay, and the next back-off starts afresh
      this.trial = false;
      this.backoff = this.cfg.backoffMs;
      return { to: 'events', reading: whole };
    }
    return undefined;
  }

  /** The reading from the interval's first point to now, before the interval is whole: what
   *  was measured when a decision cannot wait (`attach` stopped within its decision window). */
  sofar(now: number, hits: number, cpuS: number): Reading {
    return reading(this.points[0] ?? { t: now, hits, cpuS }, { t: now, hits, cpuS });
  }

  /** In walk mode: whether the back-off is over (time to try the probes again). */
  due(now: number): boolean {
    return now >= this.retryAt;
  }

  /** The back-off now (ms), for the log. */
  get backoffMs(): number {
    return this.backoff;
  }
}

function reading(a: Point, b: Point): Reading {
  const seconds = (b.t - a.t) / 1000;
  return {
    rate: seconds > 0 ? Math.max(0, b.hits - a.hits) / seconds : 0,
    cpu: seconds > 0 ? Math.max(0, b.cpuS - a.cpuS) / seconds : 0,
    seconds,
  };
}

/** The log's words for a reading against the budget: the rate, and what its traps cost at
 *  `hitCostUs` a hit (as the loader measured it on this machine; HIT_COST_US, said to be
 *  assumed, when it could not). */
export function describeReading(r: Reading, budget: number, hitCostUs?: number): string {
  const measured = hitCostUs !== undefined && Number.isFinite(hitCostUs) && hitCostUs > 0;
  const cost = measured ? hitCostUs : HIT_COST_US;
  const trapS = (r.rate * cost) / 1e6;
  // The measured cost is a best case (one call in a warm loop; a server's calls find colder
  // caches, and a call with a return probe traps twice): what it gives is a lower bound.
  const about = measured ? '≥ ' : '~';
  const share = r.cpu > 0 ? `, ${about}${Math.round((trapS / r.cpu) * 100)}% of the ${r.cpu.toFixed(2)} CPU-s/s the target used` : '';
  const at = measured ? `${costText(cost)} µs a hit at best, as measured at start` : `${costText(cost)} µs a hit, assumed`;
  return `${Math.round(r.rate)} probe hits/s over the last ${short(r.seconds)} s, budget ${budget}/s (traps ${about}${short(trapS * 1000)} ms/s at ${at}${share})`;
}

/** One decimal under 10 (a reading of a fraction of a second is not "0 s"), whole above. */
function short(x: number): string {
  const d = Math.round(x * 10) / 10;
  return d < 10 ? d.toFixed(1) : String(Math.round(x));
}

/** Two significant digits (0.45, 1.0, 3.5), whole from 10 on. */
function costText(us: number): string {
  return us < 9.95 ? us.toPrecision(2) : String(Math.round(us));
}
