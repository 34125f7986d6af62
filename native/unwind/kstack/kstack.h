/* Records from kstack.bpf.c to the ls-kstack loader (ring buffer). */
#ifndef LS_KSTACK_H
#define LS_KSTACK_H

#define KS_STACK_BYTES 16384

enum ks_kind { KS_MMAP = 1, KS_EXIT = 2, KS_EXEC = 3 };

struct ks_event {
  __u64 ts;       /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
  __u32 pid, tid;
  __u32 kind, stack_len;
  __u64 ret;      /* mmap: the address; fork: the child pid */
  __u64 len, prot, flags;
  __u64 regs[3];  /* user ip, sp, bp at the syscall */
  __u8 stack[KS_STACK_BYTES];
};

#endif
