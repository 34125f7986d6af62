/* Records from kstack.bpf.c to the ls-kstack loader (ring buffer). */
#ifndef LS_KSTACK_H
#define LS_KSTACK_H

#define KS_STACK_BYTES 16384

enum ks_kind { KS_MMAP = 1, KS_EXIT = 2, KS_EXEC = 3, KS_FORK = 4 };

#define KS_HEAD \
  __u64 ts;       /* bpf_ktime_get_ns: CLOCK_MONOTONIC */ \
  __u32 pid, tid; \
  __u32 kind, stack_len; \
  __u64 ret;      /* mmap: the address; fork: the child */ \
  __u64 len, prot, flags; \
  __u64 regs[3];  /* user ip, sp, bp at the syscall */

struct ks_event {
  KS_HEAD
  __u8 stack[KS_STACK_BYTES];
};

/* The same event without its stack, when the stack ring buffer is full: the mapping is never
 * lost, only its stack (leaf pc kept). */
struct ks_head {
  KS_HEAD
};

#endif
