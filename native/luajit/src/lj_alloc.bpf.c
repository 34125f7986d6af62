// SPDX-License-Identifier: GPL-2.0
/* Traces a LuaJIT VM's GC allocator (the lua_Alloc function global_State.allocf) and
 * captures the Lua stack of cur_L at each allocation. No debug symbols needed: the
 * discovery probe (any exported lua_* function) gives a lua_State, from which user space
 * learns the global_State and the allocator's address. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "lj_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load (LSTRACE_LUAJIT_MODE), to measure where the cost goes:
 * 0 full; 1 records without the Lua stack walk; 2 bare: the allocator probes return at once
 * (what is left is the cost of the uprobe stops themselves); 3 the walk without the search
 * for the running trace's machine code. */
const volatile __u32 cfg_mode = 0;

struct state_key { __u32 tgid; __u32 pad; __u64 msp; };
struct inflight { __u64 msp, ptr, osize, nsize; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u32); } targets SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, struct state_key); __type(value, __u64); } states SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16384); __type(key, __u64); __type(value, struct inflight); } calls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct lj_event); } scratch SEC(".maps");
/* [0] records lost (ring buffer full) */
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } counters SEC(".maps");
/* tgid -> address of jit_State.trace (found by user space), to find the running trace's mcode */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } jtrace SEC(".maps");
/* tgid -> 1 while settling: new blocks are no longer recorded, frees and reallocs still are */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u32); } draining SEC(".maps");
struct stackbuf { __u64 w[LJ_STACK_WORDS]; };
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct stackbuf); } stackscratch SEC(".maps");
/* One ring buffer per process slot (pid % 4): workers on different CPUs do not contend for
 * one buffer's lock and cache lines; a process's records stay in order in its buffer. */
#define RB_SIZE (32 << 20)
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb0 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb1 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb3 SEC(".maps");

static __always_inline void lost(void) {
  __u32 k = 0;
  __u64 *c = bpf_map_lookup_elem(&counters, &k);
  if (c) (*c)++;
}

static __always_inline __u64 rd64(__u64 addr) {
  __u64 v = 0;
  bpf_probe_read_user(&v, sizeof(v), (void *)addr);
  return v;
}

static __always_inline void submit(struct lj_event *e) {
  __u32 n = e->nframes;
  if (n > LJ_MAX_FRAMES) n = LJ_MAX_FRAMES;
  __u64 size = LJ_EVENT_HDR + (__u64)n * sizeof(struct lj_frame);
  if (size > sizeof(*e)) size = sizeof(*e);
  /* A wakeup per record costs an inter-processor interrupt (a VM exit under virtualization):
   * the loader polls on a short timer instead, and is woken only when a buffer fills up. */
  void *rb;
  switch (e->pid & 3) {
  case 0: rb = &rb0; break;
  case 1: rb = &rb1; break;
  case 2: rb = &rb2; break;
  default: rb = &rb3; break;
  }
  __u64 flags = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) > (RB_SIZE / 8) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_output(rb, e, size, flags)) lost();
}

SEC("uprobe")
int BPF_KPROBE(lj_discover, __u64 L) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  __u32 *st = bpf_map_lookup_elem(&targets, &tgid);
  if (!st || *st != 1 || !L) return 0;
  __u8 gct = 0;
  bpf_probe_read_user(&gct, 1, (void *)(L + LJ_L_GCT));
  if (gct != 6) return 0;
  __u64 g = rd64(L + LJ_L_GLREF);
  if (!g) return 0;
  __u32 k = 0;
  struct lj_event *e = bpf_map_lookup_elem(&scratch, &k);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->pid = tgid; e->tid = (__u32)id;
  e->ptr = L; e->g = g;
  e->ret = rd64(g + LJ_G_ALLOCF);
  e->osize = rd64(g + LJ_G_ALLOCD);
  e->nsize = rd64(g + LJ_G_MAINTHREF);
  e->vmstate = 0; e->op = LJ_OP_DISCOVER; e->nframes = 0; e->flags = 0; e->trace = 0; e->mcofs = ~0U;
  *st = 2;
  submit(e);
  return 0;
}

static __always_inline int targeted(__u64 id) {
  __u32 tgid = id >> 32;
  __u32 *st = bpf_map_lookup_elem(&targets, &tgid);
  return st && *st == 2; /* only processes whose state user space adopted */
}

static __always_inline void emit_free(__u64 id, __u64 ptr, __u64 osize) {
  if (!ptr) return;
  __u32 k = 0;
  struct lj_event *e = bpf_map_lookup_elem(&scratch, &k);
  if (!e) return;
  e->ts = bpf_ktime_get_ns();
  e->pid = id >> 32; e->tid = (__u32)id;
  e->ptr = ptr; e->ret = 0; e->osize = osize; e->nsize = 0; e->g = 0; e->vmstate = 0;
  e->op = LJ_OP_FREE; e->nframes = 0; e->flags = 0; e->trace = 0; e->mcofs = ~0U;
  submit(e);
}

static __always_inline void remember(__u64 id, __u64 msp, __u64 ptr, __u64 osize, __u64 nsize) {
  struct inflight in = { .msp = msp, .ptr = ptr, .osize = osize, .nsize = nsize };
  bpf_map_update_elem(&calls, &id, &in, BPF_ANY);
}

/* lua_Alloc(ud, ptr, osize, nsize), probed at its entry (any allocf) */
SEC("uprobe")
int BPF_KPROBE(lj_alloc_enter, __u64 msp, __u64 ptr, __u64 osize, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (!targeted(id)) return 0;
  if (nsize == 0) emit_free(id, ptr, osize);
  else remember(id, msp, ptr, osize, nsize);
  return 0;
}

/* Fast path for lj_alloc_f as GCC compiles it: three tail calls (jmp, which uprobes emulate
 * without single-stepping), each probed with the registers as lj_alloc_free(msp, ptr),
 * lj_alloc_malloc(msp, nsize) and lj_alloc_realloc(msp, ptr, nsize) receive them. */
SEC("uprobe")
int BPF_KPROBE(lj_free_site, __u64 msp, __u64 ptr) {
  if (cfg_mode == 2) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (targeted(id)) emit_free(id, ptr, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(lj_malloc_site, __u64 msp, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (targeted(id)) remember(id, msp, 0, 0, nsize);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(lj_realloc_site, __u64 msp, __u64 ptr, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (targeted(id)) remember(id, msp, ptr, 0, nsize);
  return 0;
}

struct walk_ctx {
  struct lj_event *e;
  __u64 cf, bot, frame, nextframe, nextlink, nextfn;
  __u32 n;
};

/* One frame per call (bpf_loop keeps the verifier's work independent of the depth). */
static long walk_step(__u32 i, void *arg) {
  struct walk_ctx *c = arg;
  struct lj_event *e = c->e;
  if (c->frame <= c->bot) return 1;
  if (c->n >= LJ_MAX_FRAMES) { e->flags |= LJ_F_TRUNC; return 1; }
  __u64 slot[2];
  if (bpf_probe_read_user(slot, sizeof(slot), (void *)(c->frame - 8))) { e->flags |= LJ_F_BADREAD; return 1; }
  __u64 fn = slot[0] & LJ_GCVMASK;
  __u64 link = slot[1];
  __u64 hdr[6];
  if (bpf_probe_read_user(hdr, sizeof(hdr), (void *)fn)) { e->flags |= LJ_F_BADREAD; return 1; }
  __u8 ffid = (hdr[1] >> 16) & 0xff; /* byte 10 */
  int skip = 0;
  __u32 n = c->n;
  if (n >= LJ_MAX_FRAMES) return 1;
  struct lj_frame *f = &e->frames[n];
  f->ffid = ffid; f->pad = 0;
  if (ffid == 0) {
    __u64 fnpc = hdr[4]; /* GCfuncL.pc, byte 32 */
    __u64 pc = 0;
    if (!c->nextframe) pc = rd64(c->cf + LJ_CFRAME_PC);
    else if ((c->nextlink & 3) == 0) pc = c->nextlink;
    else if ((c->nextlink & 7) == 2) pc = rd64(c->nextframe - 16);
    else if ((c->nextlink & 7) == 3 && c->nextfn == fn) skip = 1; /* vararg pseudo frame shown already */
    f->kind = LJ_K_LUA;
    f->ptr = fnpc - LJ_PROTO_SIZE;
    f->pos = (pc > fnpc && pc - fnpc < (1ULL << 24)) ? (__u32)((pc - fnpc) / 4 - 1) : ~0U;
  } else if (ffid == 1) {
    f->kind = LJ_K_C; f->ptr = hdr[5]; f->pos = ~0U; /* GCfuncC.f, byte 40 */
  } else {
    f->kind = LJ_K_FF; f->ptr = 0; f->pos = ~0U;
  }
  if (!skip) c->n = n + 1;
  c->nextframe = c->frame; c->nextlink = link; c->nextfn = fn;
  if ((link & 3) == 0) {
    __u32 ins = 0;
    if (bpf_probe_read_user(&ins, 4, (void *)(link - 4))) { e->flags |= LJ_F_BADREAD; return 1; }
    c->frame -= 8 * (2 + ((ins >> 8) & 0xff));
  } else {
    __u64 sz = link & ~7ULL;
    if (!sz) return 1;
    c->frame -= sz;
  }
  return 0;
}

struct scan_ctx { struct stackbuf *sb; __u64 lo, hi, found; };

static long scan_step(__u32 i, void *arg) {
  struct scan_ctx *c = arg;
  if (i >= LJ_STACK_WORDS) return 1;
  __u64 w = c->sb->w[i];
  if (w >= c->lo && w < c->hi) { c->found = w; return 1; }
  return 0;
}

/* In compiled code the interpreter's PC is stale; the return address into the trace's
 * machine code (found on the stack) selects the snapshot, hence the bytecode, like
 * lj_trace_unwind() does for errors raised in C helpers called from traces. */
static __always_inline void find_mcode(struct lj_event *e, __u32 tgid, __u64 sp) {
  __u64 *jt = bpf_map_lookup_elem(&jtrace, &tgid);
  if (!jt) return;
  __u64 arr = rd64(*jt);
  if (!arr) return;
  __u64 T = rd64(arr + 8 * (__u64)(__u32)e->vmstate);
  if (!T) return;
  __u32 tm[4]; /* startins, szmcode, mcode (lo, hi): one read */
  if (bpf_probe_read_user(tm, sizeof(tm), (void *)(T + LJ_T_SZMCODE - 4))) return;
  __u64 mcode = tm[2] | ((__u64)tm[3] << 32);
  __u32 sz = tm[1];
  if (!mcode || !sz) return;
  __u32 k = 0;
  struct stackbuf *sb = bpf_map_lookup_elem(&stackscratch, &k);
  if (!sb) return;
  /* The return address into the trace is a few frames up (lj_mem_newgco, lj_tab_new, ...):
   * look at the first 32 words, and only then at the rest. */
  struct scan_ctx c = { .sb = sb, .lo = mcode, .hi = mcode + sz, .found = 0 };
  if (!bpf_probe_read_user(sb, 32 * 8, (void *)sp)) bpf_loop(32, scan_step, &c, 0);
  if (!c.found && !bpf_probe_read_user(sb, sizeof(*sb), (void *)sp)) bpf_loop(LJ_STACK_WORDS, scan_step, &c, 0);
  e->trace = T;
  if (c.found) e->mcofs = (__u32)(c.found - mcode);
}

static __always_inline void walk(struct lj_event *e, __u64 g) {
  int vmstate = 0;
  bpf_probe_read_user(&vmstate, 4, (void *)(g + LJ_G_VMSTATE));
  e->vmstate = vmstate;
  /* ~LJ_VMST_GC = -3, ~RECORD = -5, ~OPT = -6, ~ASM = -7: the VM working for itself. */
  if (vmstate == -3 || vmstate == -5 || vmstate == -6 || vmstate == -7) { e->flags |= LJ_F_VM; return; }
  __u64 gl[2] = {0, 0}; /* cur_L, jit_base: adjacent */
  bpf_probe_read_user(gl, sizeof(gl), (void *)(g + LJ_G_CUR_L));
  __u64 L = gl[0];
  if (!L) { e->flags |= LJ_F_NOLUA; return; }
  __u64 ls[7]; /* base, top, maxstack, stack, openupval, env, cframe: one read */
  if (bpf_probe_read_user(ls, sizeof(ls), (void *)(L + LJ_L_BASE))) { e->flags |= LJ_F_BADREAD; return; }
  __u64 cf = ls[(LJ_L_CFRAME - LJ_L_BASE) / 8] & ~3ULL;
  if (!cf) { e->flags |= LJ_F_NOLUA; return; }
  __u64 base = 0;
  if (vmstate >= 0) {
    e->flags |= LJ_F_TRACE;
    base = gl[1];
  }
  if (!base) base = ls[0];
  struct walk_ctx c = { .e = e, .cf = cf, .bot = ls[(LJ_L_STACK - LJ_L_BASE) / 8] + 8, .frame = base - 8 };
  bpf_loop(LJ_MAX_FRAMES + 4, walk_step, &c, 0);
  e->nframes = c.n;
}

SEC("uretprobe")
int BPF_KRETPROBE(lj_alloc_exit, __u64 ret) {
  if (cfg_mode == 2) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  struct inflight *in = bpf_map_lookup_elem(&calls, &id);
  if (!in) return 0;
  struct inflight a = *in;
  bpf_map_delete_elem(&calls, &id);
  if (!ret) return 0; /* failed: nothing changed */
  __u32 tgid = id >> 32;
  int drain = bpf_map_lookup_elem(&draining, &tgid) != NULL;
  __u32 k = 0;
  struct lj_event *e = bpf_map_lookup_elem(&scratch, &k);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->pid = id >> 32; e->tid = (__u32)id;
  e->ptr = a.ptr; e->ret = ret; e->osize = a.osize; e->nsize = a.nsize;
  e->op = a.ptr ? LJ_OP_REALLOC : LJ_OP_ALLOC;
  e->nframes = 0; e->flags = 0; e->vmstate = 0; e->trace = 0; e->mcofs = ~0U;
  struct state_key sk = { .tgid = id >> 32, .pad = 0, .msp = a.msp };
  __u64 *g = bpf_map_lookup_elem(&states, &sk);
  e->g = g ? *g : 0;
  if (drain) e->flags |= LJ_F_DRAIN;
  /* A new block made while settling needs no stack (user space only matches its address);
   * an older block moved while settling keeps being counted, with its stack. */
  if ((drain && !a.ptr) || cfg_mode == 1) { }
  else if (g) walk(e, *g);
  else e->flags |= LJ_F_NOSTATE;
  if ((e->flags & LJ_F_TRACE) && e->vmstate > 0 && cfg_mode != 3) find_mcode(e, id >> 32, PT_REGS_SP(ctx));
  submit(e);
  return 0;
}
