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
/* Count what the walk does (counters C_*): LSTRACE_LUAJIT_STATS. */
const volatile __u32 cfg_stats = 0;
/* LSTRACE_LUAJIT_NO_WALK_CACHE: walk every time (to compare). */
const volatile __u32 cfg_nocache = 0;

struct state_key { __u32 tgid; __u32 pad; __u64 msp; };

/* Per thread: the allocator call in flight (entry probe to return probe), and the last
 * global_State found for an allocator data pointer (task storage: no hash map update and
 * delete per call). */
/* The last Lua stack walked by a thread, reused when the next walk would read the same words:
 * a walk is a function of the Lua stack words it reads (function slots, frame links) and of
 * data that cannot change while those functions are alive (a function's prototype and C
 * pointer, the calling bytecode): the same words, the same frames. A function freed (and its
 * address perhaps reused) drops the entry (see emit_free). */
#define LJ_CK 64
struct walk_cache {
  __u64 L, base, bot;
  __u32 valid, mode, n, flags, nchk, nfns, top_lua, pad;
  __u64 fns[LJ_MAX_FRAMES + 4];          /* functions of the frames walked */
  __u64 ck_addr[LJ_CK], ck_val[LJ_CK];   /* the Lua stack words read */
  struct lj_frame frames[LJ_MAX_FRAMES];
};

struct task_ctx {
  struct walk_cache wc;
  __u64 msp, ptr, osize, nsize;
  __u64 gmsp, g; /* states[(tgid, gmsp)] == g, cached */
  __u64 jt;      /* jtrace[tgid] once user space found it, cached */
  __u32 live, pad;
};

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u32); } targets SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, struct state_key); __type(value, __u64); } states SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, struct task_ctx); } tasks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct lj_event); } scratch SEC(".maps");
/* [0] records lost (ring buffer full); [1..] what the walk did (C_*), printed with the BPF
 * statistics (LSTRACE_LUAJIT_STATS) */
enum { C_LOST, C_WALKS, C_FRAMES, C_WORD_COPY, C_WORD_READ, C_MC_32, C_MC_128, C_MC_NONE,
       C_NS_HEAD, C_NS_PREP, C_NS_FRAMES, C_NS_MCODE, C_NS_SUBMIT, C_CACHE_HIT, C_CACHE_DROP, C_N };
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, C_N); __type(key, __u32); __type(value, __u64); } counters SEC(".maps");
/* tgid -> address of jit_State.trace (found by user space), to find the running trace's mcode */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } jtrace SEC(".maps");
/* tgid -> 1 while settling: new blocks are no longer recorded, frees and reallocs still are */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u32); } draining SEC(".maps");
/* Set by the loader once any process settles: until then `draining` is not looked up. */
volatile __u32 drain_any = 0;

/* The state of one Lua stack walk. It lives in map memory (walkbuf), not on the BPF stack, so
 * that the verifier checks each step once with unknown values instead of following every
 * combination of frame count and words recorded across the steps (the cause of the "BPF
 * program is too large" rejection before: see lj_walk_step). */
struct walk_state {
  __u64 lo, hi; /* lua[] holds the Lua stack's words [lo, hi) */
  __u64 cf, bot, frame, nextframe, nextlink, nextfn;
  __u64 t0;     /* lap() start (cfg_stats) */
  __u32 n, copied, read, nchk, nfns, norec, gspan, pad;
  /* user memory read in one piece, here rather than on the BPF stack (its 512 bytes are
   * shared along the call chain lj_alloc_exit -> lj_walk -> lj_walk_step) */
  __u64 ls[7];  /* lua_State: base, top, maxstack, stack, openupval, env, cframe */
  __u64 hdr[6]; /* a frame's GCfunc header */
};

/* Copies of user memory, read in one piece each (one bpf_probe_read_user per block instead
 * of one per field): the top of the Lua stack, the machine stack, global_State's hot part. */
#define LJ_LUA_WORDS 128
/* vmstate (184) .. jit_base (376 + 8), and on to jit_State.trace, which follows in GG_State
 * (g + 0x460 in Debian's 2.1-20230119): one read instead of two. Falls back to the first
 * 200 bytes. */
#define LJ_G_SPAN 1024
#define LJ_G_SPAN_MIN 200
struct walkbuf {
  __u64 lua[LJ_LUA_WORDS];
  __u64 mach[LJ_STACK_WORDS];
  __u8 g[LJ_G_SPAN];
  struct walk_state ws;
};
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct walkbuf); } walkscratch SEC(".maps");
/* One ring buffer per process slot (pid % 4): workers on different CPUs do not contend for
 * one buffer's lock and cache lines; a process's records stay in order in its buffer. */
#define RB_SIZE (32 << 20)
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb0 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb1 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RB_SIZE); } rb3 SEC(".maps");

static __always_inline void count(__u32 k) {
  __u64 *c = bpf_map_lookup_elem(&counters, &k);
  if (c) (*c)++;
}

static __always_inline void lost(void) { count(C_LOST); }

static __always_inline void add(__u32 k, __u64 n) {
  __u64 *c = bpf_map_lookup_elem(&counters, &k);
  if (c) *c += n;
}

/* With cfg_stats: adds the time since *t to counter k (sections of lj_alloc_exit). */
static __always_inline void lap(__u32 k, __u64 *t) {
  if (!cfg_stats) return;
  __u64 now = bpf_ktime_get_ns();
  __u64 *c = bpf_map_lookup_elem(&counters, &k);
  if (c) *c += now - *t;
  *t = now;
}

static __always_inline __u64 rd64(__u64 addr) {
  __u64 v = 0;
  bpf_probe_read_user(&v, sizeof(v), (void *)addr);
  return v;
}

static __always_inline void *ring_of(__u32 pid) {
  switch (pid & 3) {
  case 0: return &rb0;
  case 1: return &rb1;
  case 2: return &rb2;
  default: return &rb3;
  }
}

/* Never a wakeup from here: a wakeup costs an inter-processor interrupt (a VM exit under
 * virtualization), and once the buffer was over a fill threshold, a forced wakeup per record
 * (measured: ~1 us on every record while the reader lagged, the probes slowing down exactly
 * when the reader could not keep up). The loader polls on a 20 ms timer; a 32 MiB buffer
 * holds far more than 20 ms of records. */
#define RB_FLAGS BPF_RB_NO_WAKEUP

static __always_inline void submit(struct lj_event *e) {
  __u32 n = e->nframes;
  if (n > LJ_MAX_FRAMES) n = LJ_MAX_FRAMES;
  __u64 size = LJ_EVENT_HDR + (__u64)n * sizeof(struct lj_frame);
  if (size > sizeof(*e)) size = sizeof(*e);
  if (bpf_ringbuf_output(ring_of(e->pid), e, size, RB_FLAGS)) lost();
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

/* A freed function (or thread) of the cached walk: the entry goes (its address may come back
 * as another function, with another prototype, in the same stack slot). */
static __always_inline void drop_cached(__u64 ptr) {
  struct task_ctx *t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
  if (!t || !t->wc.valid) return;
  if (ptr == t->wc.L) { t->wc.valid = 0; return; }
  __u32 n = t->wc.nfns;
  for (__u32 i = 0; i < LJ_MAX_FRAMES + 4; i++) {
    if (i >= n) break;
    if (t->wc.fns[i] == ptr) {
      t->wc.valid = 0;
      if (cfg_stats) count(C_CACHE_DROP);
      return;
    }
  }
}

/* A free needs no stack: a small record written in place in the ring. */
static __always_inline void emit_free(__u64 id, __u64 ptr) {
  if (!ptr) return;
  if (!cfg_nocache) drop_cached(ptr);
  void *rb = ring_of(id >> 32);
  struct lj_free_event *e = bpf_ringbuf_reserve(rb, sizeof(*e), 0);
  if (!e) { lost(); return; }
  e->ts = bpf_ktime_get_ns();
  e->pid = id >> 32; e->tid = (__u32)id;
  e->ptr = ptr;
  e->op = LJ_OP_FREE;
  __builtin_memset(e->pad, 0, sizeof(e->pad));
  bpf_ringbuf_submit(e, RB_FLAGS);
}

static __always_inline void remember(__u64 msp, __u64 ptr, __u64 osize, __u64 nsize) {
  struct task_ctx *t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
  if (!t) return;
  t->msp = msp; t->ptr = ptr; t->osize = osize; t->nsize = nsize; t->live = 1;
}

/* The allocator probes are attached to the adopted processes only (per pid, after user
 * space found their global_State): they need no per-call check of `targets`. */

/* lua_Alloc(ud, ptr, osize, nsize), probed at its entry (any allocf) */
SEC("uprobe")
int BPF_KPROBE(lj_alloc_enter, __u64 msp, __u64 ptr, __u64 osize, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  if (nsize == 0) emit_free(bpf_get_current_pid_tgid(), ptr);
  else remember(msp, ptr, osize, nsize);
  return 0;
}

/* Fast path for lj_alloc_f as GCC compiles it: three tail calls (jmp, which uprobes emulate
 * without single-stepping), each probed with the registers as lj_alloc_free(msp, ptr),
 * lj_alloc_malloc(msp, nsize) and lj_alloc_realloc(msp, ptr, nsize) receive them. */
SEC("uprobe")
int BPF_KPROBE(lj_free_site, __u64 msp, __u64 ptr) {
  if (cfg_mode == 2) return 0;
  emit_free(bpf_get_current_pid_tgid(), ptr);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(lj_malloc_site, __u64 msp, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  remember(msp, 0, 0, nsize);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(lj_realloc_site, __u64 msp, __u64 ptr, __u64 nsize) {
  if (cfg_mode == 2) return 0;
  remember(msp, ptr, 0, nsize);
  return 0;
}

/* The walk is split into global functions (not static, not inlined): the verifier checks a
 * global function once, on its own, with its arguments unknown, instead of once per path that
 * reaches it. Each takes the map memory it works on as arguments (never NULL in practice, but
 * checked: the verifier cannot know). */

/* A Lua stack word: from the copy when it holds it, else read on its own. */
static __always_inline int lua_word(struct walkbuf *wb, struct walk_cache *wc, __u64 addr, __u64 *v) {
  struct walk_state *c = &wb->ws;
  __u64 lo = c->lo;
  if (addr >= lo && addr < c->hi && !((addr - lo) & 7)) {
    __u64 i = (addr - lo) / 8;
    asm volatile("" : "+r"(i)); /* keep the mask below where the verifier sees it */
    *v = wb->lua[i & (LJ_LUA_WORDS - 1)];
    c->copied++;
    if (wc) {
      __u32 k = c->nchk;
      if (k < LJ_CK) {
        wc->ck_addr[k & (LJ_CK - 1)] = addr;
        wc->ck_val[k & (LJ_CK - 1)] = *v;
        c->nchk = k + 1;
      } else c->norec = 1;
    }
    return 0;
  }
  c->read++;
  c->norec = 1; /* a word outside the copy: not cached */
  return bpf_probe_read_user(v, 8, (void *)addr);
}

/* One frame; non-zero when the walk is over. wc: the walk cache to record into, or NULL. */
__noinline int lj_walk_step(struct lj_event *e, struct walkbuf *wb, struct walk_cache *wc) {
  if (!e || !wb) return 1;
  struct walk_state *c = &wb->ws;
  if (c->frame <= c->bot) return 1;
  __u32 n = c->n;
  if (n >= LJ_MAX_FRAMES) { e->flags |= LJ_F_TRUNC; return 1; }
  __u64 fnw = 0, link = 0;
  if (lua_word(wb, wc, c->frame - 8, &fnw) || lua_word(wb, wc, c->frame, &link)) { e->flags |= LJ_F_BADREAD; return 1; }
  __u64 fn = fnw & LJ_GCVMASK;
  if (wc) {
    __u32 k = c->nfns;
    if (k < LJ_MAX_FRAMES + 4) { wc->fns[k] = fn; c->nfns = k + 1; }
    else c->norec = 1;
  }
  __u64 *hdr = c->hdr;
  if (bpf_probe_read_user(hdr, sizeof(c->hdr), (void *)fn)) { e->flags |= LJ_F_BADREAD; return 1; }
  __u8 ffid = (hdr[1] >> 16) & 0xff; /* byte 10 */
  int skip = 0;
  struct lj_frame *f = &e->frames[n];
  f->ffid = ffid; f->pad = 0;
  if (ffid == 0) {
    __u64 fnpc = hdr[4]; /* GCfuncL.pc, byte 32 */
    __u64 pc = 0;
    __u64 nextlink = c->nextlink;
    /* The top frame's saved PC: in compiled code it is stale and user space takes the
     * position from the trace's snapshot instead (src/luajit/stacks.ts): not read. */
    if (!c->nextframe) pc = (e->flags & LJ_F_TRACE) ? 0 : rd64(c->cf + LJ_CFRAME_PC);
    else if ((nextlink & 3) == 0) pc = nextlink;
    else if ((nextlink & 7) == 2) lua_word(wb, wc, c->nextframe - 16, &pc);
    else if ((nextlink & 7) == 3 && c->nextfn == fn) skip = 1; /* vararg pseudo frame shown already */
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

/* In compiled code the interpreter's PC is stale; the return address into the trace's
 * machine code (found on the stack) selects the snapshot, hence the bytecode, like
 * lj_trace_unwind() does for errors raised in C helpers called from traces. */
__noinline int lj_find_mcode(struct lj_event *e, struct walkbuf *wb, struct task_ctx *t, __u64 sp) {
  if (!e || !wb || !t) return 0;
  __u64 jt = t->jt;
  if (!jt) {
    __u32 tgid = e->pid;
    __u64 *jp = bpf_map_lookup_elem(&jtrace, &tgid);
    if (!jp) return 0;
    jt = *jp;
    t->jt = jt;
  }
  __u64 g = e->g;
  __u64 arr;
  __u64 off = jt - g - LJ_G_VMSTATE; /* in the copy of global_State's hot part? */
  if (jt >= g + LJ_G_VMSTATE && off + 8 <= wb->ws.gspan && !(off & 7)) {
    asm volatile("" : "+r"(off));
    arr = *(__u64 *)&wb->g[off & (LJ_G_SPAN - 8)];
  } else arr = rd64(jt);
  if (!arr) return 0;
  __u64 T = rd64(arr + 8 * (__u64)(__u32)e->vmstate);
  if (!T) return 0;
  __u32 tm[4]; /* startins, szmcode, mcode (lo, hi): one read */
  if (bpf_probe_read_user(tm, sizeof(tm), (void *)(T + LJ_T_SZMCODE - 4))) return 0;
  __u64 mcode = tm[2] | ((__u64)tm[3] << 32);
  __u32 sz = tm[1];
  if (!mcode || !sz) return 0;
  e->trace = T;
  /* The return address into the trace is a few frames up (lj_mem_newgco, lj_tab_new, ...):
   * look at the first 32 words, and only then at the rest. Plain bounded loops: no call
   * per word (this function is verified once, so the verifier's cost of the loops is paid
   * once). */
  __u64 lo = mcode, hi = mcode + sz;
  if (!bpf_probe_read_user(wb->mach, 32 * 8, (void *)sp)) {
    for (int i = 0; i < 32; i++) {
      __u64 w = wb->mach[i];
      if (w >= lo && w < hi) { e->mcofs = (__u32)(w - mcode); if (cfg_stats) count(C_MC_32); return 0; }
    }
  }
  if (bpf_probe_read_user(wb->mach, sizeof(wb->mach), (void *)sp)) return 0;
  for (int i = 32; i < LJ_STACK_WORDS; i++) {
    __u64 w = wb->mach[i];
    if (w >= lo && w < hi) { e->mcofs = (__u32)(w - mcode); if (cfg_stats) count(C_MC_128); return 0; }
  }
  if (cfg_stats) count(C_MC_NONE);
  return 0;
}

/* Are the Lua stack words the cached walk read the same in the new copy? */
__noinline int lj_cache_same(struct walk_cache *wc, struct walkbuf *wb) {
  if (!wc || !wb) return 0;
  __u64 lo = wb->ws.lo, hi = wb->ws.hi;
  __u32 nck = wc->nchk;
  for (__u32 i = 0; i < LJ_CK; i++) {
    if (i >= nck) break;
    __u64 a = wc->ck_addr[i];
    if (a < lo || a >= hi || ((a - lo) & 7)) return 0;
    __u64 k = (a - lo) / 8;
    asm volatile("" : "+r"(k));
    if (wb->lua[k & (LJ_LUA_WORDS - 1)] != wc->ck_val[i]) return 0;
  }
  return 1;
}

/* The Lua stack of cur_L into e->frames (e->g: its global_State). */
__noinline int lj_walk(struct lj_event *e, struct walkbuf *wb, struct task_ctx *t) {
  if (!e || !wb || !t) return 0;
  struct walk_state *ws = &wb->ws;
  __u64 g = e->g;
  /* vmstate, cur_L and jit_base in one read */
  ws->gspan = LJ_G_SPAN;
  if (bpf_probe_read_user(wb->g, LJ_G_SPAN, (void *)(g + LJ_G_VMSTATE))) {
    ws->gspan = LJ_G_SPAN_MIN;
    if (bpf_probe_read_user(wb->g, LJ_G_SPAN_MIN, (void *)(g + LJ_G_VMSTATE))) { e->flags |= LJ_F_BADREAD; return 0; }
  }
  int vmstate = *(int *)&wb->g[0];
  e->vmstate = vmstate;
  /* ~LJ_VMST_GC = -3, ~RECORD = -5, ~OPT = -6, ~ASM = -7: the VM working for itself. */
  if (vmstate == -3 || vmstate == -5 || vmstate == -6 || vmstate == -7) { e->flags |= LJ_F_VM; return 0; }
  __u64 L = *(__u64 *)&wb->g[LJ_G_CUR_L - LJ_G_VMSTATE];
  __u64 jit_base = *(__u64 *)&wb->g[LJ_G_JIT_BASE - LJ_G_VMSTATE];
  if (!L) { e->flags |= LJ_F_NOLUA; return 0; }
  __u64 *ls = ws->ls; /* base, top, maxstack, stack, openupval, env, cframe: one read */
  if (bpf_probe_read_user(ls, sizeof(ws->ls), (void *)(L + LJ_L_BASE))) { e->flags |= LJ_F_BADREAD; return 0; }
  __u64 cf = ls[(LJ_L_CFRAME - LJ_L_BASE) / 8] & ~3ULL;
  if (!cf) { e->flags |= LJ_F_NOLUA; return 0; }
  __u64 base = 0;
  if (vmstate >= 0) {
    e->flags |= LJ_F_TRACE;
    base = jit_base;
  }
  if (!base) base = ls[0];
  __u64 stack = ls[(LJ_L_STACK - LJ_L_BASE) / 8];
  /* The frames nearest the top, in one read: the words below base (never below the stack's
   * start, which may be the start of a mapping). */
  __u64 lo = base > 8 * LJ_LUA_WORDS ? base - 8 * LJ_LUA_WORDS : 0;
  if (lo < stack) lo = stack;
  __u64 len = base > lo ? base - lo : 0;
  if (len > sizeof(wb->lua)) len = 0;
  if (len && bpf_probe_read_user(wb->lua, len, (void *)lo)) len = 0;
  if (cfg_stats) count(C_WALKS);
  lap(C_NS_PREP, &ws->t0);
  ws->lo = lo; ws->hi = lo + len;
  __u32 mode = vmstate >= 0;
  struct walk_cache *wc = cfg_nocache ? NULL : &t->wc;
  if (wc && wc->valid && wc->L == L && wc->base == base && wc->bot == stack + 8 && wc->mode == mode && lj_cache_same(wc, wb)) {
    bpf_probe_read_kernel(e->frames, sizeof(e->frames), wc->frames);
    e->nframes = wc->n;
    e->flags |= wc->flags;
    /* The top frame's position is the one thing not in the Lua stack words: the C frame's
     * saved PC (interpreted code only). */
    if (wc->top_lua) {
      __u64 fnpc = e->frames[0].ptr + LJ_PROTO_SIZE;
      __u64 pc = rd64(cf + LJ_CFRAME_PC);
      e->frames[0].pos = (pc > fnpc && pc - fnpc < (1ULL << 24)) ? (__u32)((pc - fnpc) / 4 - 1) : ~0U;
    }
    if (cfg_stats) count(C_CACHE_HIT);
    lap(C_NS_FRAMES, &ws->t0);
    return 0;
  }
  if (wc) wc->valid = 0;
  ws->cf = cf; ws->bot = stack + 8; ws->frame = base - 8;
  ws->nextframe = 0; ws->nextlink = 0; ws->nextfn = 0;
  ws->n = 0; ws->copied = 0; ws->read = 0; ws->nchk = 0; ws->nfns = 0; ws->norec = 0;
  /* One frame per call: the verifier checks lj_walk_step once, whatever the depth. */
  for (int i = 0; i < LJ_MAX_FRAMES + 4; i++)
    if (lj_walk_step(e, wb, wc)) break;
  __u32 n = ws->n;
  if (n > LJ_MAX_FRAMES) n = LJ_MAX_FRAMES;
  e->nframes = n;
  if (wc && !ws->norec && !(e->flags & LJ_F_BADREAD)) {
    wc->L = L; wc->base = base; wc->bot = stack + 8; wc->mode = mode;
    wc->n = n; wc->flags = e->flags & LJ_F_TRUNC; wc->nchk = ws->nchk; wc->nfns = ws->nfns;
    wc->top_lua = !mode && n > 0 && e->frames[0].kind == LJ_K_LUA;
    bpf_probe_read_kernel(wc->frames, sizeof(wc->frames), e->frames);
    wc->valid = 1;
  }
  lap(C_NS_FRAMES, &ws->t0);
  if (cfg_stats) {
    add(C_FRAMES, n);
    add(C_WORD_COPY, ws->copied);
    add(C_WORD_READ, ws->read);
  }
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(lj_alloc_exit, __u64 ret) {
  if (cfg_mode == 2) return 0;
  __u64 t0 = cfg_stats ? bpf_ktime_get_ns() : 0;
  struct task_ctx *t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
  if (!t || !t->live) return 0;
  t->live = 0;
  if (!ret) return 0; /* failed: nothing changed */
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  int drain = drain_any && bpf_map_lookup_elem(&draining, &tgid) != NULL;
  __u32 k = 0;
  struct lj_event *e = bpf_map_lookup_elem(&scratch, &k);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->pid = tgid; e->tid = (__u32)id;
  e->ptr = t->ptr; e->ret = ret; e->osize = t->osize; e->nsize = t->nsize;
  e->op = t->ptr ? LJ_OP_REALLOC : LJ_OP_ALLOC;
  e->nframes = 0; e->flags = 0; e->vmstate = 0; e->trace = 0; e->mcofs = ~0U;
  __u64 g = 0;
  if (t->g && t->gmsp == t->msp) g = t->g;
  else {
    struct state_key sk = { .tgid = tgid, .pad = 0, .msp = t->msp };
    __u64 *gp = bpf_map_lookup_elem(&states, &sk);
    if (gp) { g = *gp; t->g = g; t->gmsp = t->msp; }
  }
  e->g = g;
  if (drain) e->flags |= LJ_F_DRAIN;
  /* A new block made while settling needs no stack (user space only matches its address);
   * an older block moved while settling keeps being counted, with its stack. */
  struct walkbuf *wb = bpf_map_lookup_elem(&walkscratch, &k);
  lap(C_NS_HEAD, &t0);
  if ((drain && !e->ptr) || cfg_mode == 1 || !wb) { }
  else if (g) {
    wb->ws.t0 = t0;
    lj_walk(e, wb, t);
    t0 = wb->ws.t0;
    if ((e->flags & LJ_F_TRACE) && e->vmstate > 0 && cfg_mode != 3) {
      lj_find_mcode(e, wb, t, PT_REGS_SP(ctx));
      lap(C_NS_MCODE, &t0);
    }
  }
  else e->flags |= LJ_F_NOSTATE;
  submit(e);
  lap(C_NS_SUBMIT, &t0);
  return 0;
}
