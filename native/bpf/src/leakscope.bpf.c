// SPDX-License-Identifier: GPL-2.0
// leakscope's uprobe programs. One generic entry and one generic return program serve every
// probed function; the attach cookie selects the function's spec (from an allocator profile).
// Events mode streams calls through a ring buffer; aggregate mode keeps live blocks and per-site
// totals in maps that the loader reads periodically.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ls_event.h"

#define PARM6(ctx) ((ctx)->r9) /* libbpf 1.1 has no PT_REGS_PARM6 */

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 stack_bytes = 0;   /* user stack copied per stack-carrying event */
const volatile __u32 agg_mode = 0;      /* 1: aggregate in maps, no per-call events */
const volatile __u32 bare = 0;          /* 1: programs return at once (the bench's floor: uprobe stops alone) */

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, LS_MAX_SPECS); __type(key, __u32); __type(value, struct ls_spec); } specs SEC(".maps");

struct inflight_key { __u32 tid; __u32 spec; };
struct inflight_val { __u64 args[6]; __u64 ip, sp, bp; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, struct inflight_key); __type(value, struct inflight_val); } inflight SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 8 << 20); } events SEC(".maps");

/* [0] events dropped because the ring buffer was full, [1] aggregate-map insert failures */
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } lost SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __uint(value_size, sizeof(struct ls_event) + LS_MAX_STACK); } scratch SEC(".maps");

/* tgids being traced (fork/exit notifications): LS_TRACED, or LS_TRACED_INHERIT once every
 * probe of the process is attached and inherited by the processes it forks */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, __u32); __type(value, __u8); } traced SEC(".maps");

/* processes that inherited their probes at fork: tgid -> the tgid the probes were attached to
 * (the attach cookie's owner). A probe fires for its owner and for the processes listed here
 * with that owner: a child that inherited only some probes (forked while its parent was still
 * being attached) is not listed, and is attached on its own instead. */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, __u32); __type(value, __u32); } inherits SEC(".maps");

/* aggregate mode */
struct agg_key { __u32 pid; __u32 spec; __u64 site; };
struct agg_val { __s64 live_count; __s64 live_bytes; __u64 total_count; __u64 total_bytes; };
struct live_key { __u32 pid; __u32 pad; __u64 addr; };
struct live_val { __u64 size; struct agg_key site; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 65536); __type(key, struct agg_key); __type(value, struct agg_val); } agg_sites SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1 << 20); __type(key, struct live_key); __type(value, struct live_val); } agg_live SEC(".maps");
/* frees of blocks not seen allocated (allocated before attach), per pid */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u64); } agg_unknown_free SEC(".maps");

static __always_inline void count_lost(__u32 idx)
{
  __u64 *v = bpf_map_lookup_elem(&lost, &idx);
  if (v) (*v)++;
}

static __always_inline __u64 read_u64(__u64 addr)
{
  __u64 v = 0;
  if (bpf_probe_read_user(&v, sizeof(v), (void *)addr)) return 0;
  return v;
}

struct walk_ctx { const struct ls_walk *w; __u64 node, first, bytes; __u32 nodes; };

static long walk_step(__u32 i, struct walk_ctx *c)
{
  const struct ls_walk *w = c->w;
  if (!c->node) return 1;
  if (w->end_off >= 0) {
    __u64 end = read_u64(c->node + w->end_off);
    if (end > c->node && end - c->node < (1ULL << 32)) c->bytes += end - c->node;
  }
  if (w->ptr_off >= 0) {
    __u64 p = read_u64(c->node + w->ptr_off);
    /* glibc chunk header: size | flags in the word before the block */
    __u64 hdr = p ? read_u64(p - 8) : 0;
    __u64 sz = hdr & ~7ULL;
    if (sz >= 16 && sz < (1ULL << 32)) c->bytes += sz - 8;
  }
  c->nodes++;
  __u64 next = read_u64(c->node + w->next_off);
  if (w->ring && next == c->first) return 1;
  if (next == c->node) return 1;
  c->node = next;
  return 0;
}

static __always_inline void walk_pool(const struct ls_spec *s, __u64 pool, struct ls_event *e)
{
  if (!pool) return;
#pragma unroll
  for (int k = 0; k < 2; k++) {
    const struct ls_walk *w = &s->walk[k];
    if (w->first_off < 0) continue;
    struct walk_ctx c = { .w = w };
    c.node = w->first_deref ? read_u64(pool + w->first_off) : pool + w->first_off;
    c.first = c.node;
    bpf_loop(LS_WALK_MAX, walk_step, &c, 0);
    e->walk_bytes += c.bytes;
    e->walk_nodes += c.nodes;
  }
}

/* The pool's tag as the pool holds it (a pointer at tag_off), when no argument gives one. */
static __always_inline void read_tag(const struct ls_spec *s, __u64 pool, struct ls_event *e)
{
  if (s->tag_off < 0 || s->tag_off > 4096 || !pool || e->str[0]) return;
  __u64 p = read_u64(pool + s->tag_off);
  if (p && bpf_probe_read_user_str(e->str, sizeof(e->str), (void *)p) < 0) e->str[0] = 0;
}

static __always_inline void capture_stack(struct pt_regs *ctx, struct ls_event *e)
{
  __u64 sp = PT_REGS_SP(ctx), bp = ctx->bp;
  e->regs[0] = PT_REGS_IP(ctx);
  e->regs[1] = sp;
  e->regs[2] = bp;
  /* frame-pointer walk, kept only while it stays inside the stack and grows upwards */
  __u32 n = 0;
#pragma unroll
  for (int i = 0; i < LS_MAX_FP; i++) {
    if (bp < sp || bp - sp > (8 << 20) || (bp & 7)) break;
    __u64 fr[2];
    if (bpf_probe_read_user(fr, sizeof(fr), (void *)bp)) break;
    if (fr[1] < 4096) break;
    e->fp[i] = fr[1];
    n = i + 1;
    if (fr[0] <= bp) break;
    bp = fr[0];
  }
  e->nfp = n;
  __u64 want = stack_bytes;
  if (want > LS_MAX_STACK) want = LS_MAX_STACK;
  if (want == 0) return;
  /* on the main thread's stack every frame lies below mm->start_stack (argc, then argv, the
   * environment and auxv above it): copy no further. Copying `want` bytes from sp reached into
   * the environment or failed at the end of the stack mapping (then only up to the end of sp's
   * page was copied); at nginx's pool creation the frames span about 2 KiB of 8. */
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  __u64 top = BPF_CORE_READ(task, mm, start_stack);
  if (top > sp && top - sp < want) want = ((top - sp) + 7) & ~7ULL;
  if (want == 0 || want > LS_MAX_STACK) return;
  if (bpf_probe_read_user(e->stack, want, (void *)sp) == 0) { e->stack_len = want; return; }
  /* the stack top is closer than `want`: copy up to the end of sp's page */
  __u32 part = 4096 - (sp & 4095);
  if (part > LS_MAX_STACK) part = LS_MAX_STACK;
  if (part && bpf_probe_read_user(e->stack, part, (void *)sp) == 0) e->stack_len = part;
}

static __always_inline __u64 pick(const struct ls_event *e, __u8 src)
{
  switch (src) {
  case 0: return e->args[0];
  case 1: return e->args[1];
  case 2: return e->args[2];
  case 3: return e->args[3];
  case 4: return e->args[4];
  case 5: return e->args[5];
  case LS_SRC_RET: return e->ret;
  case LS_SRC_DEREF: return e->deref;
  case LS_SRC_WALK: return e->walk_bytes;
  default: return 0;
  }
}

static __always_inline void agg_free(__u32 pid, __u64 addr)
{
  if (!addr) return;
  struct live_key lk = { .pid = pid, .addr = addr };
  struct live_val *lv = bpf_map_lookup_elem(&agg_live, &lk);
  if (!lv) {
    __u64 one = 1, *u = bpf_map_lookup_elem(&agg_unknown_free, &pid);
    if (u) __sync_fetch_and_add(u, 1); else bpf_map_update_elem(&agg_unknown_free, &pid, &one, BPF_ANY);
    return;
  }
  struct agg_val *av = bpf_map_lookup_elem(&agg_sites, &lv->site);
  if (av) { __sync_fetch_and_sub(&av->live_count, 1); __sync_fetch_and_sub(&av->live_bytes, lv->size); }
  bpf_map_delete_elem(&agg_live, &lk);
}

static __always_inline void agg_alloc(__u32 pid, __u32 spec, __u64 site, __u64 addr, __u64 size)
{
  if (!addr) return;
  struct agg_key k = { .pid = pid, .spec = spec, .site = site };
  struct agg_val *av = bpf_map_lookup_elem(&agg_sites, &k);
  if (!av) {
    struct agg_val z = {};
    if (bpf_map_update_elem(&agg_sites, &k, &z, BPF_NOEXIST) && bpf_map_lookup_elem(&agg_sites, &k) == 0) { count_lost(1); return; }
    av = bpf_map_lookup_elem(&agg_sites, &k);
    if (!av) return;
  }
  __sync_fetch_and_add(&av->live_count, 1);
  __sync_fetch_and_add(&av->live_bytes, size);
  __sync_fetch_and_add(&av->total_count, 1);
  __sync_fetch_and_add(&av->total_bytes, size);
  struct live_key lk = { .pid = pid, .addr = addr };
  struct live_val lv = { .size = size, .site = k };
  if (bpf_map_update_elem(&agg_live, &lk, &lv, BPF_ANY)) count_lost(1);
}

static __always_inline int finish(void *ctx, const struct ls_spec *s, struct ls_event *e)
{
  if (agg_mode) {
    /* the site is the immediate caller: ip at return, *sp at entry */
    __u64 site = e->caller;
    if (s->role == LS_ROLE_FREE) agg_free(e->pid, pick(e, s->addr_src));
    else if (s->role == LS_ROLE_ALLOC) agg_alloc(e->pid, e->spec, site, pick(e, s->addr_src), pick(e, s->size_src));
    else if (s->role == LS_ROLE_REALLOC) {
      __u64 old = pick(e, s->old_src), nw = pick(e, s->addr_src), size = pick(e, s->size_src);
      if (old) agg_free(e->pid, old);
      if (nw) agg_alloc(e->pid, e->spec, site, nw, size);
    }
    return 0;
  }
  __u64 len = sizeof(*e) + e->stack_len;
  if (len > sizeof(*e) + LS_MAX_STACK) len = sizeof(*e) + LS_MAX_STACK;
  /* no wakeup per event: a wakeup per call costs the traced process more than the probe; the
   * loader drains the ring every few milliseconds instead */
  if (bpf_ringbuf_output(&events, e, len, BPF_RB_NO_WAKEUP)) count_lost(0);
  return 0;
}

/* Whether the process hitting a probe attached for `owner` is traced through it. */
static __always_inline int wanted(__u32 owner)
{
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (tgid == owner) return 1;
  __u32 *root = bpf_map_lookup_elem(&inherits, &tgid);
  return root && *root == owner;
}

static __always_inline struct ls_event *start_event(__u32 spec_idx, const struct ls_spec **sp)
{
  __u32 zero = 0;
  struct ls_event *e = bpf_map_lookup_elem(&scratch, &zero);
  const struct ls_spec *s = bpf_map_lookup_elem(&specs, &spec_idx);
  if (!e || !s) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  e->kind = LS_EV_CALL;
  e->spec = spec_idx;
  e->pid = id >> 32;
  e->tid = (__u32)id;
  e->ts = bpf_ktime_get_ns();
  e->ret = 0;
  e->deref = 0;
  e->walk_bytes = 0;
  e->walk_nodes = 0;
  e->nfp = 0;
  e->stack_len = 0;
  e->str[0] = 0;
  e->flags = 0;
  e->caller = 0;
  *sp = s;
  return e;
}

SEC("uprobe")
int ls_entry(struct pt_regs *ctx)
{
  if (bare) return 0;
  /* cookie: the spec's index, and in the high half the process the probe was attached to */
  __u64 cookie = bpf_get_attach_cookie(ctx);
  __u32 spec_idx = (__u32)cookie;
  if (!wanted(cookie >> 32)) return 0;
  const struct ls_spec *s = 0;
  if (!(spec_idx < LS_MAX_SPECS)) return 0;
  const struct ls_spec *s0 = bpf_map_lookup_elem(&specs, &spec_idx);
  if (!s0) return 0;
  if (!(s0->flags & LS_F_ENTRY_EMIT)) {
    /* the return program emits; keep the arguments and the caller's registers until then */
    struct inflight_key k = { .tid = (__u32)bpf_get_current_pid_tgid(), .spec = spec_idx };
    struct inflight_val v = {
      .args = { PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), PARM6(ctx) },
    };
    bpf_map_update_elem(&inflight, &k, &v, BPF_ANY);
    return 0;
  }
  struct ls_event *e = start_event(spec_idx, &s);
  if (!e) return 0;
  e->owner = cookie >> 32;
  e->args[0] = PT_REGS_PARM1(ctx);
  e->args[1] = PT_REGS_PARM2(ctx);
  e->args[2] = PT_REGS_PARM3(ctx);
  e->args[3] = PT_REGS_PARM4(ctx);
  e->args[4] = PT_REGS_PARM5(ctx);
  e->args[5] = PARM6(ctx);
  e->regs[0] = PT_REGS_IP(ctx);
  e->regs[1] = PT_REGS_SP(ctx);
  e->regs[2] = ctx->bp;
  /* the exact immediate caller: the return address on top of the stack at function entry */
  e->caller = read_u64(e->regs[1]);
  if (!agg_mode && (s->flags & LS_F_STACK)) capture_stack(ctx, e);
  if (s->str_arg >= 0 && s->str_arg < 6) bpf_probe_read_user_str(e->str, sizeof(e->str), (void *)e->args[s->str_arg & 7]);
  if (s->walk_arg >= 0 && s->walk_arg < 6) {
    __u64 pool = e->args[s->walk_arg & 7];
    walk_pool(s, pool, e);
    read_tag(s, pool, e);
  }
  return finish(ctx, s, e);
}

SEC("uretprobe")
int ls_return(struct pt_regs *ctx)
{
  if (bare) return 0;
  /* cookie: the spec's index, and in the high half the process the probe was attached to */
  __u64 cookie = bpf_get_attach_cookie(ctx);
  __u32 spec_idx = (__u32)cookie;
  if (!wanted(cookie >> 32)) return 0;
  const struct ls_spec *s = 0;
  if (!(spec_idx < LS_MAX_SPECS)) return 0;
  const struct ls_spec *s0 = bpf_map_lookup_elem(&specs, &spec_idx);
  if (!s0) return 0;
  struct ls_event *e;
  if (s0->flags & LS_F_RET_ONLY) {
    /* attached without an entry program: nothing in flight, no argument needed */
    e = start_event(spec_idx, &s);
    if (!e) return 0;
    __builtin_memset(e->args, 0, sizeof(e->args));
  } else {
    struct inflight_key k = { .tid = (__u32)bpf_get_current_pid_tgid(), .spec = spec_idx };
    struct inflight_val *v = bpf_map_lookup_elem(&inflight, &k);
    if (!v) return 0;
    e = start_event(spec_idx, &s);
    if (!e) { bpf_map_delete_elem(&inflight, &k); return 0; }
    __builtin_memcpy(e->args, v->args, sizeof(e->args));
    bpf_map_delete_elem(&inflight, &k);
  }
  e->flags = 1;
  e->owner = cookie >> 32;
  e->ret = PT_REGS_RC(ctx);
  if (s->deref_arg >= 0 && s->deref_arg < 6) e->deref = read_u64(e->args[s->deref_arg & 7]);
  /* at the return probe the registers are the caller's: ip is the return address */
  e->regs[0] = PT_REGS_IP(ctx);
  e->regs[1] = PT_REGS_SP(ctx);
  e->regs[2] = ctx->bp;
  e->caller = e->regs[0];
  if (!agg_mode && (s->flags & LS_F_STACK)) capture_stack(ctx, e);
  if (s->str_arg >= 0 && s->str_arg < 6) bpf_probe_read_user_str(e->str, sizeof(e->str), (void *)e->args[s->str_arg & 7]);
  if (s->walk_arg >= 0 && s->walk_arg < 6) {
    __u64 pool = (s->flags & LS_F_WALK_RET) ? (s->deref_arg >= 0 ? e->deref : e->ret) : e->args[s->walk_arg & 7];
    walk_pool(s, pool, e);
    read_tag(s, pool, e);
  }
  return finish(ctx, s, e);
}

static __always_inline void notify(__u32 kind, __u32 pid, __u64 a0, __u64 a1)
{
  struct ls_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) { count_lost(0); return; }
  __builtin_memset(e, 0, sizeof(*e));
  e->kind = kind;
  e->pid = pid;
  e->tid = pid;
  e->ts = bpf_ktime_get_ns();
  e->args[0] = a0;
  e->args[1] = a1;
  bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(ls_fork, struct task_struct *parent, struct task_struct *child)
{
  __u32 ptgid = BPF_CORE_READ(parent, tgid);
  __u8 *st = bpf_map_lookup_elem(&traced, &ptgid);
  if (!st) return 0;
  __u32 cpid = BPF_CORE_READ(child, tgid);
  if (cpid == ptgid) return 0; /* a new thread, not a process */
  __u64 inherited = 0;
  /* The child has its parent's probes from its first instruction (perf events opened with
   * inherit) when every probe was attached to the parent before this fork, and the forking
   * thread is the main one (the events were opened on it; an older thread has none to give). */
  if (*st == LS_TRACED_INHERIT && BPF_CORE_READ(parent, pid) == ptgid) {
    __u32 root = ptgid, *r = bpf_map_lookup_elem(&inherits, &ptgid);
    if (r) root = *r;
    __u8 v = LS_TRACED_INHERIT;
    if (bpf_map_update_elem(&inherits, &cpid, &root, BPF_ANY) == 0 && bpf_map_update_elem(&traced, &cpid, &v, BPF_ANY) == 0) inherited = 1;
    else bpf_map_delete_elem(&inherits, &cpid);
  }
  notify(LS_EV_FORK, ptgid, cpid, inherited);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ls_exit, struct task_struct *task)
{
  __u32 tgid = BPF_CORE_READ(task, tgid);
  if (!bpf_map_lookup_elem(&traced, &tgid)) return 0;
  /* the process is gone when its last thread exits */
  if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
  notify(LS_EV_EXIT, tgid, BPF_CORE_READ(task, exit_code), 0);
  bpf_map_delete_elem(&inherits, &tgid);
  return 0;
}
