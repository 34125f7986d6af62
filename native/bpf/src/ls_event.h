/* Shared between the BPF program and the loader: probe specs (from allocator profiles) and
 * the events the BPF side emits through the ring buffer. Keep both sides in sync. */
#ifndef LS_EVENT_H
#define LS_EVENT_H

#define LS_MAX_SPECS 64
#define LS_MAX_FP 16
#define LS_STR_LEN 64
#define LS_MAX_STACK 16384 /* largest user-stack copy per event (power of two) */
#define LS_WALK_MAX 128    /* most blocks a pool-size walk visits per list */

/* What the BPF side does for one probed function (one spec; the attach cookie is its index). */
struct ls_walk {
  /* first node: *(pool + first_off) when first_deref, else pool + first_off; first_off < 0 = off */
  __s32 first_off;
  __u32 first_deref;
  __s32 next_off;  /* node->next */
  __s32 end_off;   /* node capacity = *(node + end_off) - node, when >= 0 */
  __s32 ptr_off;   /* node holds a malloc'd pointer at ptr_off; its size from the glibc chunk header */
  __u32 ring;      /* the list is circular: stop when back at the first node */
};

/* Where a value comes from (ls_spec.*_src): an argument 0..5, or: */
#define LS_SRC_RET 6
#define LS_SRC_DEREF 7
#define LS_SRC_WALK 8
#define LS_SRC_NONE 15

/* ls_spec.role: what the aggregate mode does with a call (events mode leaves it to user space). */
#define LS_ROLE_ALLOC 1    /* addr_src, size_src: a new live block */
#define LS_ROLE_FREE 2     /* addr_src: the block is gone */
#define LS_ROLE_REALLOC 3  /* old_src freed, addr_src/size_src allocated */
#define LS_ROLE_OTHER 4

struct ls_spec {
  __u32 flags;       /* LS_F_* */
  __u32 role;
  __u8 addr_src, size_src, old_src, pad0;
  __s32 deref_arg;   /* after return, read *(u64 *)args[deref_arg]; -1 = none */
  __s32 str_arg;     /* copy a NUL-terminated string from args[str_arg]; -1 = none */
  __s32 walk_arg;    /* walk the pool at args[walk_arg] (or the deref'd/returned pool); -1 = none */
  struct ls_walk walk[2];
  __s32 tag_off;     /* the walked pool's tag: the string *(pool + tag_off) points to, into str
                      * (so that the tagging function, single-stepped, needs no probe); -1 = none */
  __u32 pad1;
};

#define LS_F_ENTRY_EMIT 1 /* emit at entry (no return value needed) */
#define LS_F_STACK 2      /* capture a stack (caller, frame pointers, stack copy) */
#define LS_F_WALK_RET 4   /* walk the pool named by the return value / deref instead of an arg */
#define LS_F_RET_ONLY 8   /* no argument is needed at return: attach the return probe alone (no
                           * entry program, no in-flight map; the kernel's one trap serves it) */

/* values of the `traced` map */
#define LS_TRACED 1          /* traced: fork and exit notifications */
#define LS_TRACED_INHERIT 2  /* and every probe attached, inherited by the processes it forks */

/* ev.kind */
#define LS_EV_CALL 1  /* a probed function: entry or return */
#define LS_EV_FORK 2  /* a traced process forked: args[0] = child pid, args[1] = 1 when the child
                       * inherited every probe at fork (traced from its first instruction) */
#define LS_EV_EXIT 3  /* a traced process' last thread exited: args[0] = exit code */

struct ls_event {
  __u32 kind;
  __u32 spec;
  __u32 pid;
  __u32 tid;
  __u64 ts;        /* CLOCK_MONOTONIC ns */
  __u32 flags;     /* bit 0: captured at the return probe */
  __u32 owner;     /* the process the probe was attached to (the pid, or the one it inherited it from) */
  __u64 caller;    /* the immediate caller's return address (0 when no stack was asked) */
  __u64 args[6];
  __u64 ret;
  __u64 deref;
  __u64 regs[3];   /* ip, sp, bp at the capture point */
  __u64 walk_bytes;   /* pool size read from its structure (when walked) */
  __u32 walk_nodes;
  __u32 nfp;       /* frame-pointer return addresses in fp[] */
  __u64 fp[LS_MAX_FP];
  char str[LS_STR_LEN];
  __u32 stack_len; /* bytes of user stack copied from regs.sp */
  __u32 pad;
  __u8 stack[];    /* stack_len bytes */
};

#endif
