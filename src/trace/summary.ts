// A sink that summarizes a stream of events for `leakscope info`: counts by kind, the
// processes seen (with their commands and exit codes) and the time span.

import type { Event, EventKind, EventSink } from '../model/events.js';

export interface ProcessSummary {
  pid: number;
  ppid?: number;
  command: string;
  exe: string;
  events: number;
  exitCode?: number;
}

export interface EventSummary {
  events: number;
  byKind: Partial<Record<EventKind, number>>;
  processes: ProcessSummary[];
  /** First and last event time (definitions, at t = 0, excluded); undefined when no timed event. */
  firstT?: number;
  lastT?: number;
}

export class SummarySink implements EventSink {
  private events = 0;
  private readonly byKind = new Map<EventKind, number>();
  private readonly procs = new Map<number, ProcessSummary>();
  private firstT = Infinity;
  private lastT = -Infinity;

  event(e: Event): void {
    this.events++;
    this.byKind.set(e.kind, (this.byKind.get(e.kind) ?? 0) + 1);
    if (e.kind !== 'frame' && e.kind !== 'stack') {
      if (e.t < this.firstT) this.firstT = e.t;
      if (e.t > this.lastT) this.lastT = e.t;
    }
    if (e.pid === 0) return; // machine-wide events (markers, kernel) belong to no process
    const p = this.proc(e.pid);
    p.events++;
    switch (e.kind) {
      case 'process':
        p.ppid = e.ppid;
        p.command = e.command;
        p.exe = e.exe;
        break;
      case 'fork': {
        p.ppid = e.parentPid;
        const parent = this.procs.get(e.parentPid);
        if (parent && !p.command) {
          p.command = parent.command;
          p.exe = parent.exe;
        }
        break;
      }
      case 'exec':
        p.command = e.command;
        p.exe = e.exe;
        break;
      case 'exit':
        p.exitCode = e.code;
        break;
      default:
    }
  }

  private proc(pid: number): ProcessSummary {
    let p = this.procs.get(pid);
    if (!p) {
      p = { pid, command: '', exe: '', events: 0 };
      this.procs.set(pid, p);
    }
    return p;
  }

  summary(): EventSummary {
    const byKind: Partial<Record<EventKind, number>> = {};
    for (const [k, n] of [...this.byKind].sort((a, b) => b[1] - a[1])) byKind[k] = n;
    return {
      events: this.events,
      byKind,
      processes: [...this.procs.values()].sort((a, b) => a.pid - b.pid),
      firstT: Number.isFinite(this.firstT) ? this.firstT : undefined,
      lastT: Number.isFinite(this.lastT) ? this.lastT : undefined,
    };
  }
}
