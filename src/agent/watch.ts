// One target, watched for as long as the agent runs: the attach session that traces it (with
// the cheapest mode that answers: pool lifecycle with sizes read from memory for pool
// allocators, the in-kernel table for malloc), its live model and its rolling numbers. The
// session follows forks (new workers) and finds new processes (a restarted server) itself; the
// watch starts it again when it cannot: a traced process that exec'd another image (a binary
// upgrade), or a process that stays untraced (the loader died). In `auto` mode the probes' cost
// is governed (governor.ts): a target whose probe hits stay above its budget is watched by walks
// of its pool trees instead, and the probes are tried again after a back-off.

import { AttachSession } from '../attach/session.js';
import { detectProfiles } from '../attach/detect.js';
import { loadProfile, type AllocatorProfile } from '../attach/profile.js';
import { unwindLib } from '../attach/loader.js';
import { cpuSecondsOf, exeOf } from '../proc/processes.js';
import type { EventSink } from '../model/events.js';
import { teeSink } from '../sources/tee.js';
import type { AgentConfig, TargetConfig } from './config.js';
import { TargetModel } from './model.js';
import { Sampler, type TargetNumbers } from './sampler.js';
import { StackTable } from './stacks.js';
import { describeTarget, exeCodeBase, matcherFor, type Matcher } from './targets.js';
import type { Log } from './log.js';
import { LuajitWindows } from './luajit.js';
import { describeReading, Governor } from '../attach/governor.js';

/** A wanted process untraced this long means the session cannot take it: start it again. */
const UNTRACED_GRACE_MS = 5000;
/** Restarts of one target's session are at least this far apart (doubling to 5 minutes). */
const RESTART_BACKOFF_MS = 10_000;

export type Mode = 'events' | 'aggregate' | 'walk' | 'luajit';

export class TargetWatch {
  readonly model: TargetModel;
  readonly stacks: StackTable;
  readonly sampler: Sampler;
  numbers: TargetNumbers = { processes: [], classes: [], sites: [] };
  session: AttachSession | undefined;
  luajit: LuajitWindows | undefined;
  mode: Mode | undefined;
  profiles: AllocatorProfile[] = [];
  /** Why the target is not traced, when it is not. */
  problem = '';
  restarts = 0;
  vanished = 0;
  /** Set in `auto` mode when the probes are the pool lifecycle's: their cost budget. */
  governor: Governor | undefined;
  /** When the current mode began (Date.now()), for the log. */
  private modeSince = 0;
  /** A mode switch is under way: the model is between two sessions, samples wait. */
  private switching = false;
  private probeHitsBefore = 0;
  private readonly match: Matcher;
  private readonly untracedSince = new Map<number, number>();
  private lastRestart = 0;
  private backoff = RESTART_BACKOFF_MS;
  private wasUp = false;
  private busy = false;
  private stopped = false;
  /** Extra sinks fed the same events (the rolling trace segments). */
  tap: EventSink | undefined;
  /** Called after the budget switched the target's mode (the segments start a new file). */
  onModeSwitch: (() => void) | undefined;

  constructor(readonly cfg: TargetConfig, agent: AgentConfig, private readonly startMono: bigint, private readonly log: Log) {
    this.stacks = new StackTable(agent.limits.stacks);
    this.model = new TargetModel(this.stacks, agent.limits, () => this.nowS());
    this.sampler = new Sampler({
      points: Math.min(4096, Math.ceil(agent.windowMs / agent.sampleMs) + 1),
      trackedSeries: agent.limits.trackedSeries,
      topSites: agent.topSites,
      topClasses: agent.topClasses,
    });
    this.match = matcherFor(cfg);
  }

  get name(): string {
    return this.cfg.name;
  }

  private nowS(): number {
    return Number(process.hrtime.bigint() - this.startMono) / 1e9;
  }

  /** Whether processes of the target are traced now: as the last check found them (every 2 s,
   *  the moment it logs that none is left), not as the last sample (every 15 s by default) did. */
  get up(): boolean {
    if (!this.wasUp) return false;
    if (this.session) return this.session.pids.length > 0;
    if (this.luajit) return this.luajit.pids.length > 0;
    return false;
  }

  get probeHits(): number {
    return this.probeHitsBefore + (this.session?.stats.calls ?? 0) + (this.luajit?.events ?? 0);
  }

  get lost(): number {
    return this.model.lost + (this.luajit?.lost ?? 0);
  }

  /** Checks the target: starts tracing once a process is there, restarts a session that cannot
   *  keep up with the processes, notes a target that vanished or came back. */
  async check(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const want = this.match();
      if (!this.mode && want.length > 0) await this.begin(want[0]!);
      else if (this.session) {
        await this.health(want);
        if (this.governor) await this.govern(want);
      } else if (this.luajit) this.luajit.pids = want;
      else if (want.length > 0) await this.startAgain();
      const up = want.length > 0;
      if (this.wasUp && !up) {
        this.vanished++;
        this.log.info(`target ${this.name}: no process left (${describeTarget(this.cfg)}); waiting for it to come back`);
      } else if (!this.wasUp && up && this.mode) {
        this.log.info(`target ${this.name}: tracing ${want.length} process(es) (${this.mode} mode, allocator ${this.profiles.map((p) => p.name).join(', ')})`);
      }
      this.wasUp = up;
    } catch (err) {
      this.problem = (err as Error).message;
      this.log.warn(`target ${this.name}: ${this.problem}`);
    } finally {
      this.busy = false;
    }
  }

  private async begin(first: number): Promise<void> {
    const exe = exeOf(first);
    let profiles: AllocatorProfile[];
    if (this.cfg.allocator.length) profiles = this.cfg.allocator.map((a) => loadProfile(a));
    else {
      profiles = exe ? detectProfiles({ pid: first, exe }) : [];
      if (profiles.length === 0) profiles = [loadProfile('libc')];
    }
    this.profiles = profiles;
    if (profiles.some((p) => p.engine === 'luajit')) {
      if (profiles.length > 1) throw new Error('allocator luajit runs its own tracer: give it a target of its own');
      this.mode = 'luajit';
      this.luajit = new LuajitWindows(this.cfg, this.log);
      this.luajit.pids = this.match();
      this.luajit.start();
      return;
    }
    const pools = profiles.some((p) => p.functions.some((f) => f.role === 'pool-create'));
    this.mode = this.cfg.mode === 'auto' ? (pools ? 'events' : 'aggregate') : this.cfg.mode;
    // the governor is for `auto` only: a mode written in the config is never overridden
    if (this.cfg.mode === 'auto' && this.mode === 'events' && this.cfg.budget.maxProbeRate > 0) this.governor = new Governor(this.cfg.budget);
    this.modeSince = Date.now();
    await this.startSession();
  }

  /** The budget: probes over it for a sustained interval give way to walks; after the back-off
   *  they are tried again. */
  private async govern(want: number[]): Promise<void> {
    const g = this.governor!;
    const now = Date.now();
    const since = Math.round((now - this.modeSince) / 1000);
    if (this.mode === 'walk') {
      if (!g.due(now)) return;
      this.log.info(`target ${this.name}: trying the probes again for ${Math.round(g.cfg.sustainMs / 1000)} s (walk mode for ${since} s)`);
      g.switches++;
      await this.switchTo('events');
      g.probesOn(true);
      return;
    }
    const s = this.session!.stats;
    const d = g.observe(now, s.calls + s.lost, want.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0));
    if (!d) return;
    const what = describeReading(d.reading, g.cfg.maxProbeRate, this.session!.hitCostUs);
    if (d.to === 'events') {
      this.log.info(`target ${this.name}: ${what}: within the budget, staying with the probes`);
      return;
    }
    this.log.info(`target ${this.name}: ${what}: over the budget${d.trial ? ' again' : ''}, switching to walk mode (no probes: pools found by walking their trees, without creation stacks); probes tried again in ${Math.round(d.retryMs / 1000)} s`);
    await this.switchTo('walk');
  }

  /** Another mode for the target: the old session stops, the model starts again from what the
   *  new one finds (walk and probes alike find the live pools at attach), so no pool is lost or
   *  counted twice; the rolling series go on. */
  private async switchTo(mode: 'events' | 'walk'): Promise<void> {
    this.switching = true;
    try {
      this.mode = mode;
      this.modeSince = Date.now();
      await this.restart();
      // the pools' sizes now, not at the next pool sample: no dip in the series
      this.session?.samplePools();
    } finally {
      this.switching = false;
    }
    this.onModeSwitch?.();
  }

  private async startSession(): Promise<void> {
    // walk: the events mode's model fed by walks of the pool trees alone, no probe
    const walkOnly = this.mode === 'walk';
    const mode = walkOnly ? 'events' : (this.mode as 'events' | 'aggregate');
    const sink: EventSink = this.tap && mode === 'events' ? teeSink(this.model, this.tap) : this.model;
    const session = await AttachSession.start({
      target: { match: this.match },
      profiles: this.profiles,
      poolAllocs: this.cfg.poolAllocs,
      mode,
      stackBytes: this.cfg.stackBytes,
      ringbufMb: mode === 'events' && (this.cfg.poolAllocs || this.profiles.some((p) => p.functions.some((f) => f.role === 'alloc'))) ? 64 : 16,
      unwindLib: unwindLib(),
      pollMs: 1000,
      poolSampleMs: mode === 'events' ? this.cfg.poolSampleMs : 0,
      walkOnly,
      sink,
      startMono: this.startMono,
      onWarning: (m) => this.log.warn(`target ${this.name}: ${m}`),
    });
    if (this.stopped) {
      // the agent stopped while this session was starting (a restart, a mode switch): it must not outlive it
      await session.stop().catch(() => undefined);
      return;
    }
    this.model.locator = session;
    this.session = session;
    this.problem = '';
    for (const w of session.loaderWarnings) this.log.warn(`target ${this.name}: ${w}`);
  }

  private async health(want: number[]): Promise<void> {
    const traced = new Set(this.session!.pids);
    const now = Date.now();
    let why = '';
    for (const pid of want) {
      if (traced.has(pid)) {
        this.untracedSince.delete(pid);
        // the session read this process's maps when it attached: an exec since (a binary
        // upgrade's new master) maps the program elsewhere, and its probes and stacks are stale
        const base = exeCodeBase(pid);
        const known = this.model.procs.get(pid)?.modules;
        if (base !== undefined && known && known.size > 0 && ![...known.values()].some((m) => m.base === base)) why ||= `process ${pid} runs a new program image (exec, binary upgrade)`;
      } else {
        const since = this.untracedSince.get(pid) ?? now;
        this.untracedSince.set(pid, since);
        if (now - since > UNTRACED_GRACE_MS) why ||= `process ${pid} is not traced`;
      }
    }
    const alive = new Set(want);
    for (const pid of this.untracedSince.keys()) if (!alive.has(pid)) this.untracedSince.delete(pid);
    if (!why || now - this.lastRestart < this.backoff) return;
    this.backoff = now - this.lastRestart > 10 * this.backoff ? RESTART_BACKOFF_MS : Math.min(300_000, this.backoff * 2);
    this.lastRestart = now;
    this.restarts++;
    this.log.info(`target ${this.name}: ${why}; attaching again`);
    await this.restart();
  }

  /** A session that failed to start (a restart, a mode switch): tried again, with the restarts' back-off. */
  private async startAgain(): Promise<void> {
    const now = Date.now();
    if (now - this.lastRestart < this.backoff) return;
    this.backoff = now - this.lastRestart > 10 * this.backoff ? RESTART_BACKOFF_MS : Math.min(300_000, this.backoff * 2);
    this.lastRestart = now;
    this.restarts++;
    this.log.info(`target ${this.name}: not traced (${this.problem || 'no session'}); attaching again`);
    await this.restart();
  }

  private async restart(): Promise<void> {
    const old = this.session;
    this.session = undefined;
    if (old) {
      this.probeHitsBefore += old.stats.calls;
      await old.stop().catch(() => undefined);
    }
    this.model.reset();
    this.untracedSince.clear();
    this.governor?.probesOn(this.governor.trial);
    await this.startSession();
  }

  /** One sample: the kernel's table (aggregate mode), names for new frames, the numbers. */
  async sample(): Promise<void> {
    // between two sessions the model is empty: the numbers of the last sample stand
    if (this.stopped || this.switching) return;
    if (this.mode === 'luajit') {
      this.numbers = this.luajit!.numbers(this.sampler);
      return;
    }
    const s = this.session;
    if (s && this.mode === 'aggregate') {
      const rows = await s.aggregate();
      this.model.setAggregate(rows, (spec) => s.specOf(spec)?.fn.symbol);
    }
    await this.stacks.name();
    if (this.switching) return;
    this.numbers = this.sampler.sample(this.model, this.nowS());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const s = this.session;
    this.session = undefined;
    await s?.stop().catch(() => undefined);
    await this.luajit?.stop();
  }
}
