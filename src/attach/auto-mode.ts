// `attach --mode auto`, the default: the probes (events mode) unless their hits cost more than
// the budget, then no probe at all (walk mode). Every hit stops the traced thread (~1 µs here,
// ~3.5 µs on the older VM of BENCHMARKS.md): a busy keepalive server loses a quarter of its requests to the traps
// alone, which no BPF program can remove, while walks of its pool trees cost it nothing.
// Decided once, over the first seconds (the decision window, measured by the governor of
// governor.ts): the probe session's events are held in memory meanwhile, then either written in
// order (under the budget: the trace is events mode's, as if it had been asked for) or dropped
// for a walk session that finds every live pool again, including the ones made in the window
// (over it). Not switched later: a pool made under the probes would have no end in the trace.
// A rate that later stays over the budget gets one warning instead.

import type { Event, EventSink } from '../model/events.js';
import { eventPerCall, type AllocatorProfile } from './profile.js';
import { describeReading, Governor, type Reading } from './governor.js';

/** How long the probes' hits are measured before the mode is chosen. */
export const DECISION_WINDOW_MS = 5000;
/** After the window, how long the rate must stay over the budget for the one warning. */
export const LATE_SUSTAIN_MS = 30_000;
/** Readings in the window: the governor wants each third of it over the budget, so several. */
const POLL_MS = 250;
const LATE_POLL_MS = 1000;
/** Held events at most, whatever the budget: beyond, the mode is chosen at once (memory). */
const MIN_HELD_CAP = 100_000;
/** What of the window is kept when the probes give way to walks: the processes' lives and
 *  memory, which hold no pool (a walk finds every live pool again, and a pool made under the
 *  probes would have no end in the trace). */
const KEPT_ON_WALK: ReadonlySet<Event['kind']> = new Set(['process', 'fork', 'exec', 'exit', 'rss', 'module']);

/** Whether `--mode auto` has a choice to make: a budget, walks that can stand in for the probes
 *  (a profile with roots to walk from, and a --pool-sample to walk at), and no per-call data
 *  asked for (--pool-allocs, the malloc family: costly by design). Otherwise auto is plain
 *  events mode. */
export function autoChooses(profiles: AllocatorProfile[], poolAllocs: boolean, poolSampleMs: number, budget: number): boolean {
  if (budget <= 0 || poolSampleMs <= 0 || eventPerCall(profiles, poolAllocs)) return false;
  return profiles.some((p) => (p.discover?.roots?.length ?? 0) > 0);
}

/** A sink that keeps the events until told where they go (in order), or to drop them. */
export class HeldEvents implements EventSink {
  private held: Event[] = [];
  private to: EventSink | undefined;
  private dropping = false;

  /** @param grew called every 256 events held, with how many */
  constructor(private readonly grew: (n: number) => void) {}

  event(e: Event): void {
    if (this.to) return this.to.event(e);
    if (this.dropping) return;
    this.held.push(e);
    if ((this.held.length & 255) === 0) this.grew(this.held.length);
  }

  get size(): number {
    return this.held.length;
  }

  /** The events held go to `to`, in order; the ones after them too. */
  release(to: EventSink): void {
    const held = this.held;
    this.held = [];
    this.to = to;
    for (const e of held) to.event(e);
  }

  /** The events held go to `to` if `keep` says so, the others are dropped, and all that come
   *  after too. */
  drop(keep: (e: Event) => boolean, to: EventSink): void {
    const held = this.held;
    this.held = [];
    this.dropping = true;
    for (const e of held) if (keep(e)) to.event(e);
  }
}

export interface AutoHost {
  budget: number;
  windowMs: number;
  /** After the window, how long over the budget before the one warning (LATE_SUSTAIN_MS). */
  lateMs?: number;
  /** The probe session's hits so far (calls, and the ones lost) and its targets' CPU seconds. */
  hits(): number;
  cpuS(): number;
  /** What a probe hit costs here (µs), as the probe session's loader measured it; undefined
   *  when it could not (the log then says what it assumed). */
  hitCostUs(): number | undefined;
  /** Stops the probe session. */
  stopProbes(): Promise<void>;
  /** Starts the walk session, writing to the trace, as the current one (throws if it cannot). */
  startWalk(): Promise<void>;
  /** Ends tracing (no session left). */
  end(): void;
  /** A line for the user and for the report: the mode that runs and why. */
  say(line: string): void;
  /** A warning (also in the report). */
  warn(line: string): void;
}

export type AutoState = 'deciding' | 'switching' | 'events' | 'walk';

export class AutoMode {
  readonly held: HeldEvents;
  state: AutoState = 'deciding';
  private readonly window: Governor;
  private late: Governor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private switching: Promise<void> | undefined;
  private start = 0;
  private readonly hitCap: number;
  private readonly heldCap: number;

  constructor(private readonly host: AutoHost, private readonly trace: EventSink) {
    this.held = new HeldEvents((n) => this.grew(n));
    this.window = new Governor({ maxProbeRate: host.budget, sustainMs: host.windowMs, backoffMs: 0 });
    // more hits than the budget allows the whole window: its rate over the window is over the
    // budget whatever comes next, so the window ends there (a busy server pays for the probes
    // a fraction of a second, not the whole window)
    this.hitCap = (host.budget * host.windowMs) / 1000;
    this.heldCap = Math.max(2 * this.hitCap, MIN_HELD_CAP);
  }

  /** The probe session is live: the window starts now. */
  begin(): void {
    this.start = Date.now();
    this.window.observe(this.start, this.host.hits(), this.host.cpuS());
    this.timer = setInterval(() => this.poll(), POLL_MS).unref();
  }

  private sofar(): Reading {
    return this.window.sofar(Date.now(), this.host.hits(), this.host.cpuS());
  }

  private poll(): void {
    const now = Date.now();
    const hits = this.host.hits();
    const cpuS = this.host.cpuS();
    if (this.state === 'deciding') {
      const d = this.window.observe(now, hits, cpuS);
      if (d?.to === 'walk') this.decide('walk', d.reading);
      // (hits need not be events: pool calls are counted in the kernel, so grew() may not run)
      else if (hits > this.hitCap) this.decide('walk', this.window.sofar(now, hits, cpuS));
      // the window is whole, and not over the budget in each of its thirds
      else if (now - this.start >= this.host.windowMs) this.decide('events', this.window.sofar(now, hits, cpuS));
    } else if (this.state === 'events' && this.late) {
      const d = this.late.observe(now, hits, cpuS);
      if (d?.to !== 'walk') return;
      this.host.warn(`${describeReading(d.reading, this.host.budget, this.host.hitCostUs())}: the probes have cost more than the budget for ${Math.round(this.late.cfg.sustainMs / 1000)} s; \`--mode walk\` costs nothing per request (auto mode does not switch after its first ${this.host.windowMs / 1000} s: the pools made under the probes would have no end in the trace)`);
      this.stopTimer();
    }
  }

  /** Every 256 held events: too many hits or events to hold for the whole window, choose now. */
  private grew(n: number): void {
    // (the probe session is still starting before begin(): its first events are the processes'
    // and the pools found alive, not hits)
    if (this.state !== 'deciding' || this.start === 0) return;
    // more hits than the whole window may have: over the budget, however short the time so far
    const over = this.host.hits() > this.hitCap;
    if (over || n > this.heldCap) {
      const r = this.sofar();
      this.decide(over || r.rate > this.host.budget ? 'walk' : 'events', r);
    }
  }

  private decide(to: 'events' | 'walk', r: Reading): void {
    if (this.state !== 'deciding') return;
    const what = describeReading(r, this.host.budget, this.host.hitCostUs());
    if (to === 'events') {
      this.keepProbes();
      this.host.say(`auto mode: ${what}: within the budget, the probes stay (events mode)`);
      return;
    }
    this.state = 'switching';
    this.stopTimer();
    // the processes' lives reach the trace before anything of the walk's (a fork after the
    // walk found the child's pools would start the child again)
    this.held.drop((e) => KEPT_ON_WALK.has(e.kind), this.trace);
    this.switching = (async () => {
      // not from within the probe session's own event (this may be one of its calls)
      await new Promise((r) => setImmediate(r));
      await this.host.stopProbes().catch(() => undefined);
      try {
        await this.host.startWalk();
      } catch (err) {
        this.host.warn(`auto mode: ${what}: over the budget, but walk mode could not start (${(err as Error).message}); tracing ends`);
        this.host.end();
        return;
      }
      this.state = 'walk';
      this.host.warn(`auto mode: ${what}: over the budget, switched to walk mode (no probe: the pool trees are walked at every --pool-sample); ` +
        'lost: the pools\' creation stacks and sites, and pools linked from no tree are not seen; `--mode events` keeps the probes');
    })();
  }

  /** Under the budget: the held events are written, and the rate is watched from now on. */
  private keepProbes(): void {
    this.state = 'events';
    this.held.release(this.trace);
    this.stopTimer();
    this.late = new Governor({ maxProbeRate: this.host.budget, sustainMs: this.host.lateMs ?? LATE_SUSTAIN_MS, backoffMs: 0 });
    this.late.observe(Date.now(), this.host.hits(), this.host.cpuS());
    this.timer = setInterval(() => this.poll(), LATE_POLL_MS).unref();
  }

  /** Tracing ends (the duration, a signal, the targets gone): within the window, the probes'
   *  events are written whatever the rate (their cost is paid; a walk now would see nothing the
   *  held events do not); a switch under way finishes first. */
  async settle(): Promise<void> {
    if (this.state === 'deciding') {
      const r = this.sofar();
      const what = describeReading(r, this.host.budget, this.host.hitCostUs());
      this.keepProbes();
      this.host.say(r.rate > this.host.budget
        ? `auto mode: ${what}: over the budget, but tracing ended within the first ${this.host.windowMs / 1000} s: the probes' events are kept (events mode; a longer trace would have switched to walk mode)`
        : `auto mode: ${what}: within the budget (tracing ended within the first ${this.host.windowMs / 1000} s), events mode`);
    }
    await this.switching;
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
