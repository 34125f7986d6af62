// Checks of the machine: privileges, kernel features for uprobes and BPF, tracefs.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { findTracefs } from '../kernel/tracefs.js';
import { check, type Check } from './check.js';
import { which } from './which.js';

/** CONFIG_* of the running kernel from /proc/config.gz or /boot/config-RELEASE, if readable. */
export function kernelConfig(): { source: string; values: Map<string, string> } | undefined {
  const sources: [string, () => string][] = [
    ['/proc/config.gz', () => gunzipSync(readFileSync('/proc/config.gz')).toString('utf8')],
    [`/boot/config-${release()}`, () => readFileSync(`/boot/config-${release()}`, 'utf8')],
  ];
  for (const [source, read] of sources) {
    try {
      const values = new Map<string, string>();
      for (const m of read().matchAll(/^(CONFIG_\w+)=(.*)$/gm)) values.set(m[1]!, m[2]!);
      return { source, values };
    } catch { /* next */ }
  }
  return undefined;
}

const KERNEL_OPTIONS: { name: string; why: string; required: boolean }[] = [
  { name: 'CONFIG_UPROBES', why: 'user-space probes (attach)', required: true },
  { name: 'CONFIG_BPF_SYSCALL', why: 'BPF programs', required: true },
  { name: 'CONFIG_BPF_EVENTS', why: 'BPF programs on uprobes and tracepoints', required: true },
  { name: 'CONFIG_DEBUG_INFO_BTF', why: 'BTF for CO-RE BPF programs', required: true },
  { name: 'CONFIG_UPROBE_EVENTS', why: 'uprobes through tracefs (bpftrace)', required: false },
  { name: 'CONFIG_FTRACE_SYSCALLS', why: 'syscall tracepoints (kernel side: mmap, brk, shm)', required: false },
];

interface BpfFeatures { syscall: boolean; ringbuf: boolean }

function bpfFeatures(): BpfFeatures | string {
  const bpftool = which('bpftool');
  if (!bpftool) return 'bpftool is not installed, so bpf() was not tried';
  try {
    const j = JSON.parse(execFileSync(bpftool, ['feature', 'probe', 'kernel', '-j'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 }));
    return { syscall: !!j.syscall_config?.have_bpf_syscall, ringbuf: !!j.map_types?.have_ringbuf_map_type };
  } catch (err) {
    return `bpftool feature probe failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n')[0]}`;
  }
}

export function systemChecks(): Check[] {
  const out: Check[] = [];
  const root = process.getuid?.() === 0;
  out.push(check({
    id: 'root', group: 'system', required: true, status: root ? 'ok' : 'fail',
    title: root ? 'running as root' : 'not running as root',
    detail: root ? 'BPF programs and uprobes can be loaded' : 'loading BPF programs and uprobes needs root (CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN); the checks below may be incomplete',
    fix: root ? undefined : 'run leakscope with sudo',
  }));

  const cfg = kernelConfig();
  if (!cfg) {
    out.push(check({ id: 'kernel-config', group: 'system', status: 'warn', title: `kernel ${release()}: configuration not readable`, detail: 'neither /proc/config.gz nor /boot/config-* exists; the features are checked directly below' }));
  } else {
    for (const o of KERNEL_OPTIONS) {
      const v = cfg.values.get(o.name);
      const on = v === 'y' || v === 'm';
      out.push(check({
        id: `kernel-${o.name}`, group: 'system', required: o.required, status: on ? 'ok' : o.required ? 'fail' : 'warn',
        title: `${o.name}=${v ?? 'unset'}`, detail: `${o.why} (from ${cfg.source})`,
        fix: on ? undefined : `a kernel built with ${o.name}=y is needed for this`,
      }));
    }
  }

  const uprobePmu = existsSync('/sys/bus/event_source/devices/uprobe');
  out.push(check({
    id: 'uprobes', group: 'system', required: true, status: uprobePmu ? 'ok' : 'fail',
    title: uprobePmu ? 'uprobes: available (perf uprobe PMU)' : 'uprobes: not available',
    detail: uprobePmu ? '/sys/bus/event_source/devices/uprobe exists: libbpf can attach uprobes to one process' : '/sys/bus/event_source/devices/uprobe is missing: the kernel has no uprobe support',
  }));

  const tfs = findTracefs();
  out.push(check({
    id: 'tracefs', group: 'system', status: tfs ? 'ok' : 'warn',
    title: tfs ? `tracefs: mounted at ${tfs}` : 'tracefs: not mounted',
    detail: tfs
      ? `tracepoints${existsSync(`${tfs}/uprobe_events`) ? ' and uprobe_events' : ''} are visible`
      : 'tracepoints (the kernel side: mmap, brk, shm, OOM) are looked up there, and `attach` makes forked processes inherit their probes through it; `leakscope kernel` and `attach` mount it themselves when run as root',
    fix: tfs ? undefined : 'mount -t tracefs nodev /sys/kernel/tracing',
  }));

  const btf = existsSync('/sys/kernel/btf/vmlinux');
  out.push(check({
    id: 'btf', group: 'system', required: true, status: btf ? 'ok' : 'fail',
    title: btf ? 'BTF: /sys/kernel/btf/vmlinux' : 'BTF: missing',
    detail: btf ? 'the BPF programs can be loaded without kernel headers (CO-RE)' : 'without /sys/kernel/btf/vmlinux the compiled BPF programs cannot be relocated for this kernel',
  }));

  const f = bpfFeatures();
  if (typeof f === 'string') {
    out.push(check({ id: 'bpf', group: 'system', required: true, status: root ? 'warn' : 'fail', title: 'bpf(): not tested', detail: f, fix: 'apt-get install bpftool' }));
  } else {
    out.push(check({
      id: 'bpf', group: 'system', required: true, status: f.syscall ? 'ok' : 'fail',
      title: f.syscall ? 'bpf(): works' : 'bpf(): refused',
      detail: f.syscall ? 'a test program loaded (bpftool feature probe)' : 'the kernel refused a test BPF program (not root, or unprivileged BPF disabled, or a lockdown)',
    }));
    out.push(check({
      id: 'ringbuf', group: 'system', required: true, status: f.ringbuf ? 'ok' : 'fail',
      title: f.ringbuf ? 'BPF ring buffer: supported' : 'BPF ring buffer: not supported',
      detail: f.ringbuf ? 'events reach leakscope in order, without per-CPU buffers' : 'the loader needs BPF_MAP_TYPE_RINGBUF (Linux 5.8 or later)',
    }));
  }
  return out;
}
