/* mmap with its user stack: at sys_exit_mmap the user registers and stack are still those of
 * the call (a syscall does not move them), so the event carries ip/sp/bp and a copy of the top
 * of the stack, for ls_unwind in the loader. Targets are followed across fork. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kstack.h"

char LICENSE[] SEC("license") = "GPL";

#define EXE_MAX 256
/* Processes that exec this path become targets (set by the loader; empty: none). */
const volatile char exe_path[EXE_MAX] = {};
const volatile __u32 exe_len = 0;
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, char[EXE_MAX]); } namebuf SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, __u8); } targets SEC(".maps");
struct mmap_args { __u64 len, prot, flags; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct mmap_args); } pending SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 32 << 20); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4 << 20); } heads SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");

static __always_inline void count_lost(void) {
  __u32 k = 0;
  __u64 *v = bpf_map_lookup_elem(&lost, &k);
  if (v) __sync_fetch_and_add(v, 1);
}

SEC("tp/syscalls/sys_enter_mmap")
int enter_mmap(struct trace_event_raw_sys_enter *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, tid = (__u32)id;
  if (!bpf_map_lookup_elem(&targets, &pid)) return 0;
  struct mmap_args a = { ctx->args[1], ctx->args[2], ctx->args[3] };
  bpf_map_update_elem(&pending, &tid, &a, BPF_ANY);
  return 0;
}

SEC("tp/syscalls/sys_exit_mmap")
int exit_mmap(struct trace_event_raw_sys_exit *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, tid = (__u32)id;
  struct mmap_args *a = bpf_map_lookup_elem(&pending, &tid);
  if (!a) return 0;
  struct mmap_args args = *a;
  bpf_map_delete_elem(&pending, &tid);
  if (ctx->ret < 0) return 0;
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
  struct ks_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    count_lost(); /* stacks lost, counted; the mapping itself goes through `heads` */
    struct ks_head *h = bpf_ringbuf_reserve(&heads, sizeof(*h), 0);
    if (!h) return 0;
    h->ts = bpf_ktime_get_ns();
    h->pid = pid; h->tid = tid; h->kind = KS_MMAP; h->stack_len = 0;
    h->ret = ctx->ret; h->len = args.len; h->prot = args.prot; h->flags = args.flags;
    h->regs[0] = BPF_CORE_READ(regs, ip); h->regs[1] = BPF_CORE_READ(regs, sp); h->regs[2] = BPF_CORE_READ(regs, bp);
    bpf_ringbuf_submit(h, 0);
    return 0;
  }
  e->ts = bpf_ktime_get_ns();
  e->pid = pid; e->tid = tid; e->kind = KS_MMAP;
  e->ret = ctx->ret; e->len = args.len; e->prot = args.prot; e->flags = args.flags;
  e->regs[0] = BPF_CORE_READ(regs, ip);
  e->regs[1] = BPF_CORE_READ(regs, sp);
  e->regs[2] = BPF_CORE_READ(regs, bp);
  __u64 sp = e->regs[1];
  e->stack_len = 0;
  if (bpf_probe_read_user(e->stack, KS_STACK_BYTES, (void *)sp) == 0) {
    e->stack_len = KS_STACK_BYTES;
  } else {
    /* the top of the stack is nearer: copy to the end of sp's page, then whole pages */
    __u32 part = 4096 - (sp & 4095);
    if (part <= KS_STACK_BYTES && bpf_probe_read_user(e->stack, part, (void *)sp) == 0) e->stack_len = part;
  }
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp/sched/sched_process_fork")
int on_fork(struct trace_event_raw_sched_process_fork *ctx) {
  __u32 pid = bpf_get_current_pid_tgid() >> 32;
  if (!bpf_map_lookup_elem(&targets, &pid)) return 0;
  __u32 child = ctx->child_pid;
  if (child == ctx->parent_pid) return 0;
  __u8 one = 1;
  bpf_map_update_elem(&targets, &child, &one, BPF_ANY);
  /* tell the loader, so that a child gone before its events are read is unwound with the
   * modules it inherited (threads are reported too; the loader ignores those) */
  /* in the same ring as the mmaps, so that it is read before the child's (rings are not
   * ordered with each other) */
  struct ks_head *h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
  if (!h) return 0;
  h->ts = bpf_ktime_get_ns();
  h->pid = pid; h->tid = (__u32)bpf_get_current_pid_tgid(); h->kind = KS_FORK; h->stack_len = 0;
  h->ret = child;
  bpf_ringbuf_submit(h, 0);
  return 0;
}

SEC("tp/sched/sched_process_exit")
int on_exit(struct trace_event_raw_sched_process_template *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32, tid = (__u32)id;
  bpf_map_delete_elem(&pending, &tid);
  if (pid != tid || !bpf_map_lookup_elem(&targets, &pid)) return 0;
  bpf_map_delete_elem(&targets, &pid);
  struct ks_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->pid = pid; e->tid = tid; e->kind = KS_EXIT; e->stack_len = 0;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* A target's new image: the loader drops what ls_unwind cached of the old one. */
static __always_inline int is_wanted_exe(struct trace_event_raw_sched_process_exec *ctx) {
  if (exe_len == 0 || exe_len >= EXE_MAX) return 0;
  __u32 k = 0;
  char *buf = bpf_map_lookup_elem(&namebuf, &k);
  if (!buf) return 0;
  unsigned off = ctx->__data_loc_filename & 0xFFFF;
  long n = bpf_probe_read_kernel_str(buf, EXE_MAX, (void *)ctx + off);
  if (n != (long)exe_len + 1) return 0;
  for (int i = 0; i < EXE_MAX; i++) {
    if (i >= exe_len) return 1;
    if (buf[i] != exe_path[i]) return 0;
  }
  return 0;
}

SEC("tp/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx) {
  __u32 pid = bpf_get_current_pid_tgid() >> 32;
  if (!bpf_map_lookup_elem(&targets, &pid)) {
    if (!is_wanted_exe(ctx)) return 0;
    __u8 one = 1;
    bpf_map_update_elem(&targets, &pid, &one, BPF_ANY);
  }
  struct ks_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->pid = pid; e->tid = pid; e->kind = KS_EXEC; e->stack_len = 0;
  bpf_ringbuf_submit(e, 0);
  return 0;
}
