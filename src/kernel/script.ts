// Generates the bpftrace program of the kernel side. The text holds no user input: target
// pids and the executable's paths are bpftrace positional arguments ($1, $2, ...), so a path
// can never become code.

export interface ScriptOptions {
  /** Number of target pids passed as the first positional arguments. */
  pids: number;
  /** The tracer's own pid is the positional argument after the pids and exes: READY is
   *  printed on its getppid() calls once every probe is attached (see the sentinels). */
  /** Number of executable paths passed after the pids (processes that exec one become targets). */
  exes: number;
  /** Count user page faults per target and print the counts every `faultIntervalMs`. */
  faults: boolean;
  faultIntervalMs: number;
  /** OOM kills and direct-reclaim stalls anywhere on the machine. */
  machine: boolean;
  /** Trace mmap here (false when ls-kstack traces it, with stacks). Default true. */
  mmap?: boolean;
}

/** Lines the program prints (space-separated, first word the record type); see parse.ts. */
export function kernelScript(o: ScriptOptions): string {
  const lines: string[] = [];
  const seed = Array.from({ length: o.pids }, (_, i) => `@t[$${i + 1}] = 1;`).join(' ');
  lines.push(`BEGIN { ${seed} }`);
  // READY: bpftrace attaches probes after BEGIN, in script order or in reverse depending on
  // its version and the probe type, so a sentinel at each end of the script watches the
  // tracer's own getppid(); once both have fired, every probe between them is attached.
  const self = `$${o.pids + o.exes + 1}`;
  const sentinel = (mine: string, other: string) =>
    `tracepoint:syscalls:sys_enter_getppid /pid == ${self}/ { @${mine} = 1; if (@${other} == 1 && @ready == 0) { @ready = 1; printf("READY\\n"); } }`;
  lines.push(sentinel('s1', 's2'));
  // A target that execs (its mappings start afresh), or any process that execs a wanted exe.
  const execMatch = ['@t[pid]', ...Array.from({ length: o.exes }, (_, i) => `str(args->filename) == str($${o.pids + i + 1})`)].join(' || ');
  lines.push(`tracepoint:sched:sched_process_exec /${execMatch}/ { @t[pid] = 1; printf("X %llu %d\\n", nsecs, pid); }`);
  // Children (and threads: harmless, they share the tgid) of targets are targets.
  lines.push('tracepoint:sched:sched_process_fork /@t[pid]/ { @t[args->child_pid] = 1; printf("F %llu %d %d\\n", nsecs, pid, args->child_pid); }');
  lines.push('tracepoint:sched:sched_process_exit /@t[pid] && pid == tid/ { delete(@t[pid]); printf("E %llu %d %d\\n", nsecs, pid, curtask->exit_code); }');
  // Syscalls: arguments saved per thread at entry, the event printed at a successful exit.
  if (o.mmap !== false) {
    lines.push('tracepoint:syscalls:sys_enter_mmap /@t[pid]/ { @ml[tid] = args->len; @mp[tid] = args->prot; @mf[tid] = args->flags; @in[tid] = 1; }');
    lines.push('tracepoint:syscalls:sys_exit_mmap /@in[tid]/ { if (args->ret >= 0) { printf("M %llu %d %d %lu %lu %lu %lu\\n", nsecs, pid, tid, args->ret, @ml[tid], @mp[tid], @mf[tid]); } delete(@in[tid]); delete(@ml[tid]); delete(@mp[tid]); delete(@mf[tid]); }');
  }
  lines.push('tracepoint:syscalls:sys_enter_munmap /@t[pid]/ { @ua[tid] = args->addr; @ul[tid] = args->len; @iu[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_munmap /@iu[tid]/ { if (args->ret == 0) { printf("U %llu %d %lu %lu\\n", nsecs, pid, @ua[tid], @ul[tid]); } delete(@iu[tid]); delete(@ua[tid]); delete(@ul[tid]); }');
  lines.push('tracepoint:syscalls:sys_enter_mremap /@t[pid]/ { @ra[tid] = args->addr; @ro[tid] = args->old_len; @rn[tid] = args->new_len; @ir[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_mremap /@ir[tid]/ { if (args->ret >= 0) { printf("R %llu %d %d %lu %lu %lu %lu\\n", nsecs, pid, tid, @ra[tid], @ro[tid], args->ret, @rn[tid]); } delete(@ir[tid]); delete(@ra[tid]); delete(@ro[tid]); delete(@rn[tid]); }');
  lines.push('tracepoint:syscalls:sys_exit_brk /@t[pid]/ { printf("B %llu %d %lu\\n", nsecs, pid, args->ret); }');
  lines.push('tracepoint:syscalls:sys_enter_shmget /@t[pid]/ { @gs[tid] = args->size; @ig[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_shmget /@ig[tid]/ { if (args->ret >= 0) { printf("SG %llu %d %ld %lu\\n", nsecs, pid, args->ret, @gs[tid]); } delete(@ig[tid]); delete(@gs[tid]); }');
  lines.push('tracepoint:syscalls:sys_enter_shmat /@t[pid]/ { @ai[tid] = args->shmid; @ia[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_shmat /@ia[tid]/ { if (args->ret >= 0) { printf("SA %llu %d %ld %lu\\n", nsecs, pid, @ai[tid], args->ret); } delete(@ia[tid]); delete(@ai[tid]); }');
  lines.push('tracepoint:syscalls:sys_enter_shmdt /@t[pid]/ { @da[tid] = args->shmaddr; @id[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_shmdt /@id[tid]/ { if (args->ret == 0) { printf("SD %llu %d %lu\\n", nsecs, pid, @da[tid]); } delete(@id[tid]); delete(@da[tid]); }');
  // shmctl(id, IPC_RMID = 0, ...)
  lines.push('tracepoint:syscalls:sys_enter_shmctl /@t[pid] && args->cmd == 0/ { @ci[tid] = args->shmid; @ic[tid] = 1; }');
  lines.push('tracepoint:syscalls:sys_exit_shmctl /@ic[tid]/ { if (args->ret == 0) { printf("SR %llu %d %ld\\n", nsecs, pid, @ci[tid]); } delete(@ic[tid]); delete(@ci[tid]); }');
  if (o.faults) {
    lines.push('tracepoint:exceptions:page_fault_user /@t[pid]/ { @pf[pid] = count(); }');
    // Running totals (never cleared while tracing: a clear would race with the print).
    lines.push(`interval:ms:${Math.max(10, Math.floor(o.faultIntervalMs))} { printf("I %llu\\n", nsecs); print(@pf); }`);
  }
  if (o.machine) {
    lines.push('tracepoint:oom:mark_victim { printf("O %llu %d %lu\\n", nsecs, args->pid, args->anon_rss + args->file_rss + args->shmem_rss); }');
    lines.push('tracepoint:vmscan:mm_vmscan_direct_reclaim_begin { @rb[tid] = nsecs; }');
    lines.push('tracepoint:vmscan:mm_vmscan_direct_reclaim_end /@rb[tid]/ { printf("D %llu %d %llu %lu\\n", nsecs, pid, nsecs - @rb[tid], args->nr_reclaimed); delete(@rb[tid]); }');
    // the same stall inside a memory cgroup at its limit (containers)
    lines.push('tracepoint:vmscan:mm_vmscan_memcg_reclaim_begin { @cb[tid] = nsecs; }');
    lines.push('tracepoint:vmscan:mm_vmscan_memcg_reclaim_end /@cb[tid]/ { printf("C %llu %d %llu %lu\\n", nsecs, pid, nsecs - @cb[tid], args->nr_reclaimed); delete(@cb[tid]); }');
  }
  lines.push(sentinel('s2', 's1'));
  // Nothing to print at exit: the maps are bookkeeping.
  const maps = ['ready', 's1', 's2', 't', ...(o.mmap !== false ? ['ml', 'mp', 'mf', 'in'] : []), 'ua', 'ul', 'iu', 'ra', 'ro', 'rn', 'ir', 'gs', 'ig', 'ai', 'ia', 'da', 'id', 'ci', 'ic'];
  if (o.faults) maps.push('pf');
  if (o.machine) maps.push('rb', 'cb');
  const last = o.faults ? 'printf("I %llu\\n", nsecs); print(@pf); ' : '';
  lines.push(`END { ${last}${maps.map((m) => `clear(@${m});`).join(' ')} }`);
  return lines.join('\n') + '\n';
}
