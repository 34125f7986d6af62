// Native stacks: libunwind (.eh_frame, no frame pointers needed), interned in process.
//
// A captured stack (leaf-first return addresses) is looked up in a lock-free cache keyed by a
// hash of the whole address list; only a new stack takes the mutex, walks the call trie
// (frame per pc, stack node per (parent, frame)) and appends FRAME/STACK definitions to the
// calling thread's chunk. Symbols are never resolved here: FRAME records carry pc and module,
// and `src/symbols/` resolves them after the run, using the MODULE records (with build ids)
// written at start-up and after every dlopen.
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <elf.h>
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "enc.h"
#include "lk.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

// --- arena for data that lives as long as the process ---------------------------------------

static uint8_t *g_arena;
static size_t g_arena_left;

static void *arena_alloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n > g_arena_left) {
    size_t sz = n > (1u << 20) ? n : (1u << 20);
    uint8_t *p = lk_raw_mmap(sz);
    if (!p) return NULL;
    g_arena = p;
    g_arena_left = sz;
  }
  void *r = g_arena;
  g_arena += n;
  g_arena_left -= n;
  return r;
}

// --- a u64 -> u32 map, used under g_mu only ---------------------------------------------------

typedef struct {
  uint64_t *keys;
  uint32_t *vals;
  size_t cap, count;
} u64map;

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static int map_grow(u64map *m) {
  size_t ncap = m->cap ? m->cap * 2 : 4096;
  uint64_t *nk = lk_raw_mmap(ncap * sizeof *nk);
  uint32_t *nv = lk_raw_mmap(ncap * sizeof *nv);
  if (!nk || !nv) return -1;
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = mix64(m->keys[i]) & (ncap - 1);
    while (nk[j]) j = (j + 1) & (ncap - 1);
    nk[j] = m->keys[i];
    nv[j] = m->vals[i];
  }
  if (m->cap) {
    lk_raw_munmap(m->keys, m->cap * sizeof *m->keys);
    lk_raw_munmap(m->vals, m->cap * sizeof *m->vals);
  }
  m->keys = nk; m->vals = nv; m->cap = ncap;
  return 0;
}

// Returns the value for key, or inserts `val` and returns 0 when absent.
static uint32_t map_get_or_put(u64map *m, uint64_t key, uint32_t val, int *inserted) {
  *inserted = 0;
  if ((m->count + 1) * 4 > m->cap * 3 && map_grow(m) != 0) return 0;
  size_t j = mix64(key) & (m->cap - 1);
  while (m->keys[j]) {
    if (m->keys[j] == key) return m->vals[j];
    j = (j + 1) & (m->cap - 1);
  }
  m->keys[j] = key;
  m->vals[j] = val;
  m->count++;
  *inserted = 1;
  return val;
}

// --- modules ----------------------------------------------------------------------------------

typedef struct {
  uintptr_t lo, hi, offset;
  const char *path;
  char build_id[41];
} module;

#define MAX_MODULES 2048
static module g_mods[MAX_MODULES];
static int g_nmods;
static char g_exe[PATH_MAX];

typedef struct {
  module found[MAX_MODULES];
  int n;
} scan_ctx;

static void build_id_of(struct dl_phdr_info *info, char *out) {
  out[0] = '\0';
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE) continue;
    const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const uint8_t *name = p + sizeof *nh;
      const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
        size_t n = nh->n_descsz > 20 ? 20 : nh->n_descsz;
        static const char hex[] = "0123456789abcdef";
        for (size_t k = 0; k < n; k++) { out[2 * k] = hex[desc[k] >> 4]; out[2 * k + 1] = hex[desc[k] & 15]; }
        out[2 * n] = '\0';
        return;
      }
      p = desc + ((nh->n_descsz + 3) & ~3u);
    }
  }
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  scan_ctx *ctx = arg;
  const char *path = info->dlpi_name;
  if (!path || !*path) path = g_exe;
  if (path[0] != '/') return 0;  // the vDSO and the like: no file to symbolize
  char bid[41];
  build_id_of(info, bid);
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum && ctx->n < MAX_MODULES; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    module *m = &ctx->found[ctx->n++];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    m->lo = lo & ~(page - 1);
    m->hi = lo + ph->p_memsz;
    m->offset = ph->p_offset & ~(page - 1);
    m->path = path;
    memcpy(m->build_id, bid, sizeof bid);
  }
  return 0;
}

static const char *module_of(uintptr_t pc) {
  for (int i = 0; i < g_nmods; i++)
    if (pc >= g_mods[i].lo && pc < g_mods[i].hi) return g_mods[i].path;
  return "";
}

static pthread_mutex_t scan_mu = PTHREAD_MUTEX_INITIALIZER;  // taken before g_mu, never after

void lk_modules_scan(lk_buf *b) {
  static scan_ctx ctx;  // big: not on the stack; scans are serialised by scan_mu
  pthread_mutex_lock(&scan_mu);
  ctx.n = 0;
  dl_iterate_phdr(scan_cb, &ctx);  // takes the loader lock: never while holding g_mu
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < ctx.n; i++) {
    module *f = &ctx.found[i];
    int known = 0;
    for (int k = 0; k < g_nmods; k++)
      if (g_mods[k].lo == f->lo && g_mods[k].hi == f->hi && strcmp(g_mods[k].path, f->path) == 0) { known = 1; break; }
    if (known || g_nmods >= MAX_MODULES) continue;
    size_t len = strlen(f->path);
    char *copy = arena_alloc(len + 1);
    if (!copy) continue;
    memcpy(copy, f->path, len + 1);
    // A library loaded where an unloaded one was replaces it.
    int slot = g_nmods;
    for (int k = 0; k < g_nmods; k++)
      if (g_mods[k].lo < f->hi && f->lo < g_mods[k].hi) { slot = k; break; }
    g_mods[slot] = *f;
    g_mods[slot].path = copy;
    if (slot == g_nmods) g_nmods++;
    lk_reserve(b, len + 120);
    lk_ev(b, R_MODULE, lk_now());
    lk_var(b, f->lo);
    lk_var(b, f->hi - f->lo);
    lk_var(b, f->offset);
    lk_str(b, copy, len);
    lk_str(b, f->build_id, 40);
  }
  pthread_mutex_unlock(&g_mu);
  pthread_mutex_unlock(&scan_mu);
}

// --- stack interning --------------------------------------------------------------------------

typedef struct {
  _Atomic uint64_t hash;  // 0 = empty; written last (release) so readers see the rest
  uint32_t id, n;
  uintptr_t *pcs;
} fs_ent;

#define FS_BITS 19
#define FS_CAP (1u << FS_BITS)
static fs_ent *g_fs;          // whole-stack cache, lock-free reads
static size_t g_fs_count;
static u64map g_frames;       // pc -> frame id
static u64map g_nodes;        // (parent << 32 | frame) -> stack id
static uint32_t g_next_frame = 1, g_next_stack = 1;

// Four independent lanes: the multiplies overlap instead of forming one long chain.
static inline uint64_t hash_pcs(const uintptr_t *pcs, int n) {
  uint64_t a = 0x9e3779b97f4a7c15ull ^ (uint64_t)n, b = 0xc2b2ae3d27d4eb4full, c = 0x165667b19e3779f9ull, d = 0x27d4eb2f165667c5ull;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    a = (a ^ pcs[i]) * 0x100000001b3ull;
    b = (b ^ pcs[i + 1]) * 0x100000001b3ull;
    c = (c ^ pcs[i + 2]) * 0x100000001b3ull;
    d = (d ^ pcs[i + 3]) * 0x100000001b3ull;
  }
  for (; i < n; i++) a = (a ^ pcs[i]) * 0x100000001b3ull;
  uint64_t h = mix64(a ^ mix64(b) ^ (mix64(c) >> 1) ^ (mix64(d) << 1));
  return h ? h : 1;
}

static uint32_t fs_lookup(uint64_t h, const uintptr_t *pcs, int n) {
  if (!g_fs) return 0;
  size_t i = h & (FS_CAP - 1);
  for (int probe = 0; probe < 64; probe++, i = (i + 1) & (FS_CAP - 1)) {
    uint64_t eh = atomic_load_explicit(&g_fs[i].hash, memory_order_acquire);
    if (eh == 0) return 0;
    if (eh == h && g_fs[i].n == (uint32_t)n && memcmp(g_fs[i].pcs, pcs, (size_t)n * sizeof *pcs) == 0) return g_fs[i].id;
  }
  return 0;
}

static void fs_insert(uint64_t h, const uintptr_t *pcs, int n, uint32_t id) {
  if (!g_fs || g_fs_count * 4 > FS_CAP * 3) return;  // full: new stacks take the slow path
  uintptr_t *copy = arena_alloc((size_t)n * sizeof *pcs);
  if (!copy) return;
  memcpy(copy, pcs, (size_t)n * sizeof *pcs);
  size_t i = h & (FS_CAP - 1);
  for (int probe = 0; probe < 64; probe++, i = (i + 1) & (FS_CAP - 1)) {
    if (atomic_load_explicit(&g_fs[i].hash, memory_order_relaxed) != 0) continue;
    g_fs[i].id = id;
    g_fs[i].n = (uint32_t)n;
    g_fs[i].pcs = copy;
    atomic_store_explicit(&g_fs[i].hash, h, memory_order_release);
    g_fs_count++;
    return;
  }
}

static uint32_t frame_id(lk_buf *b, uintptr_t pc) {
  int ins;
  uint32_t id = map_get_or_put(&g_frames, pc, g_next_frame, &ins);
  if (!ins) return id;
  g_next_frame++;
  const char *mod = module_of(pc);
  size_t len = strlen(mod);
  lk_reserve(b, len + 48);
  lk_u8(b, R_FRAME);
  lk_var(b, id);
  lk_var(b, pc);
  lk_str(b, mod, len);
  lk_str(b, "", 0);
  lk_str(b, "", 0);
  lk_var(b, 0);
  lk_var(b, 0);
  return id;
}

static uint32_t node_id(lk_buf *b, uint32_t parent, uint32_t frame) {
  int ins;
  uint32_t id = map_get_or_put(&g_nodes, ((uint64_t)parent << 32) | frame, g_next_stack, &ins);
  if (!ins) return id;
  g_next_stack++;
  lk_reserve(b, 32);
  lk_u8(b, R_STACK);
  lk_var(b, id);
  lk_var(b, parent);
  lk_var(b, frame);
  return id;
}

// --- unwinding --------------------------------------------------------------------------------
//
// libunwind reads .eh_frame, so stacks are right without frame pointers, but stepping costs
// ~8 ns a frame. Nearly every function compiled by gcc keeps its canonical frame address at a
// fixed distance K from the stack pointer at a given pc (K = the caller's sp - this frame's sp),
// with the return address just below it. So each step libunwind makes teaches us K for that pc;
// once two walks agree (and the return address sat at CFA - 8), later walks through that pc take
// one table lookup and one load. A pc that ever disagrees (alloca, signal frames) is left to
// libunwind for good. Reads stay inside [sp, the outermost frame's sp] of the thread's own stack.

#define UW_BITS 16
#define UW_KQ_MAX 0x7FFF
enum { UW_ONCE = 1, UW_OK = 2, UW_STOP = 3 };  // UW_STOP: kq 0 = outermost frame, else unusable
static _Atomic uint64_t *g_uw;                // ip (47 bits) | kq = K / 8 (15 bits) | state (2 bits)
static __thread uintptr_t t_max_sp;           // sp of this thread's outermost frame, once seen

static inline uint64_t uw_pack(uintptr_t ip, uint32_t kq, uint32_t st) { return ((uint64_t)ip << 17) | ((uint64_t)kq << 2) | st; }
static inline _Atomic uint64_t *uw_slot(uintptr_t ip) { return &g_uw[(ip * 0x9E3779B97F4A7C15ull) >> (64 - UW_BITS)]; }

static void uw_learn(uintptr_t ip, intptr_t k, int ra_ok) {
  if (ip >> 47) return;
  _Atomic uint64_t *slot = uw_slot(ip);
  uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
  uint32_t kq = (k > 0 && (k & 7) == 0 && k / 8 < UW_KQ_MAX && ra_ok) ? (uint32_t)(k / 8) : UW_KQ_MAX;
  if ((old >> 17) == ip) {
    uint32_t st = old & 3, okq = (old >> 2) & UW_KQ_MAX;
    if (st == UW_STOP) {
      if (okq == 0) atomic_store_explicit(slot, uw_pack(ip, UW_KQ_MAX, UW_STOP), memory_order_relaxed);
      return;
    }
    if (okq != kq) atomic_store_explicit(slot, uw_pack(ip, UW_KQ_MAX, UW_STOP), memory_order_relaxed);
    else if (st == UW_ONCE) atomic_store_explicit(slot, uw_pack(ip, kq, UW_OK), memory_order_relaxed);
  } else if (kq != UW_KQ_MAX) {
    atomic_store_explicit(slot, uw_pack(ip, kq, UW_ONCE), memory_order_relaxed);
  } else {
    atomic_store_explicit(slot, uw_pack(ip, UW_KQ_MAX, UW_STOP), memory_order_relaxed);
  }
}

static void uw_learn_outermost(uintptr_t ip) {
  if (ip >> 47) return;
  _Atomic uint64_t *slot = uw_slot(ip);
  uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
  if ((old >> 17) == ip && (old & 3) != UW_STOP) atomic_store_explicit(slot, uw_pack(ip, UW_KQ_MAX, UW_STOP), memory_order_relaxed);
  else if ((old >> 17) != ip) atomic_store_explicit(slot, uw_pack(ip, 0, UW_STOP), memory_order_relaxed);
}

static inline int is_self(uintptr_t ip) { return ip >= lk_self_lo && ip < lk_self_hi; }

// The thread's previous walk, every frame as (pc, sp), outermost FIRST. Consecutive allocations
// mostly share their callers: once the new walk reaches a frame of the previous one (same pc at
// the same sp), checking that each outer return-address slot still holds the same pc (loads
// that do not depend on each other) proves the rest of the stack is unchanged. Kept root first,
// the shared callers stay in place with their stack ids: only the new leaf frames are written.
#define WALK_MAX (LK_MAX_DEPTH + 32)
typedef struct {
  int n, complete;  // complete: [0] is the outermost frame
  int sid_ok;       // sid[k] holds the stack id of frames 0..k (root to k)
  uintptr_t ip[WALK_MAX], sp[WALK_MAX];
  uint32_t sid[WALK_MAX];
  uint16_t cnt[WALK_MAX];  // frames outside our library among 0..k
} walk_cache;
static __thread walk_cache t_walk;
static __thread unsigned t_walk_count;
static int g_force_libunwind;  // LEAKSCOPE_UNWIND=libunwind: every walk by libunwind (tests, doubt)
static __thread uint32_t t_last_id;        // the previous walk's stack id, reused when a walk is all the same
static __thread int t_last_n_out;          // and its number of recorded frames

// Stores `nn` frames given leaf first as cache positions base .. base+nn-1 (root first).
static inline void cache_put(walk_cache *w, int base, const uintptr_t *ip, const uintptr_t *sp, int nn) {
  unsigned c = base > 0 ? w->cnt[base - 1] : 0;
  for (int pos = base, i = nn - 1; i >= 0; pos++, i--) {
    w->ip[pos] = ip[i];
    w->sp[pos] = sp[i];
    c += !is_self(ip[i]);
    w->cnt[pos] = (uint16_t)c;
  }
  w->n = base + nn;
}

// The recorded frames (leaf first, outside our library, at most lk_depth) of the cached walk.
static int cache_out(const walk_cache *w, uintptr_t *out) {
  int n = 0;
  for (int k = w->n - 1; k >= 0 && n < lk_depth; k--)
    if (!is_self(w->ip[k])) out[n++] = w->ip[k];
  return n;
}

// libunwind's walk, teaching the table. Records up to lk_depth frames outside our library.
static int slow_walk(unw_context_t *uc, uintptr_t *out) {
  unw_cursor_t c;
  uintptr_t lip[WALK_MAX], lsp[WALK_MAX];
  int ln = 0, complete = 0;
  t_walk.n = 0;
  t_walk.complete = 0;
  t_walk.sid_ok = 0;
  if (unw_init_local(&c, uc) < 0) return 0;
  int n = 0;
  uintptr_t pip = 0, psp = 0;
  for (int steps = 0; steps < 4096; steps++) {
    unw_word_t ip, sp;
    unw_get_reg(&c, UNW_REG_IP, &ip);
    unw_get_reg(&c, UNW_REG_SP, &sp);
    if (steps > 0) uw_learn(pip, (intptr_t)(sp - psp), sp > psp && *(uintptr_t *)(sp - 8) == ip);
    if (!is_self(ip) && n < lk_depth) out[n++] = ip;
    if (ln < WALK_MAX) {
      lip[ln] = ip;
      lsp[ln++] = sp;
    }
    pip = ip;
    psp = sp;
    int r = unw_step(&c);
    if (r <= 0) {
      if (r == 0) {
        uw_learn_outermost(pip);
        if (psp > t_max_sp) t_max_sp = psp;
        complete = ln < WALK_MAX;
      }
      break;
    }
    if (n >= lk_depth && t_max_sp) break;
  }
  // Only a whole walk (or one reaching the depth limit) is a usable cache.
  if (complete || n >= lk_depth) {
    cache_put(&t_walk, 0, lip, lsp, ln);
    t_walk.complete = complete;
  }
  return n;
}

__attribute__((noinline)) static int slow_capture(uintptr_t *out) {
  unw_context_t uc;
  unw_getcontext(&uc);
  return slow_walk(&uc, out);
}

// Through a pc the table cannot hold (alloca, signal frames) there is nothing to learn:
// libunwind's own cached backtrace is far cheaper than stepping (which blocks signals around
// every lookup).
__attribute__((noinline)) static int backtrace_capture(uintptr_t *out) {
  void *raw[LK_MAX_DEPTH + 32];
  int got = unw_backtrace(raw, lk_depth + 16), n = 0;
  for (int i = 0; i < got && n < lk_depth; i++)
    if (!is_self((uintptr_t)raw[i])) out[n++] = (uintptr_t)raw[i];
  t_walk.n = 0;
  t_walk.complete = 0;
  t_walk.sid_ok = 0;
  return n;
}

// The fast walk starts at our caller's frame exactly as libunwind sees it: pc = our return
// address, sp = our canonical frame address (the compiler knows it, frame pointer or not);
// or, given ip, at that frame (a hook's caller: our own frames are not stepped through).
// Returns the frame count; *filled: out[] holds the frames (else they are in t_walk only, see
// cache_out); *same is set when the stack is exactly the previous walk's; *fresh is the first
// cache position (root first) whose sid[] is not known yet.
__attribute__((noinline)) static int capture(uintptr_t *out, int *filled, int *same_stack, int *fresh, uintptr_t ip, uintptr_t sp) {
  if (!ip) {
    ip = (uintptr_t)__builtin_return_address(0);
    sp = (uintptr_t)__builtin_dwarf_cfa();
  }
  *same_stack = 0;
  *fresh = 0;
  *filled = 1;
  // Every 4096th walk is libunwind's, re-checking what the table learned: a pc whose frame size
  // only looked fixed (alloca of the same size twice) is caught and handed back to libunwind.
  if (LK_UNLIKELY(!t_max_sp) || LK_UNLIKELY((++t_walk_count & 4095) == 0) || LK_UNLIKELY(g_force_libunwind)) return slow_capture(out);
  const uintptr_t max_sp = t_max_sp;
  walk_cache *w = &t_walk;
  const int depth = lk_depth, last_n = w->n;
  uintptr_t nip[WALK_MAX], nsp[WALK_MAX];  // the new frames, leaf first
  int nn = 0, n = 0, k = last_n - 1, complete = 0;
  int stale = last_n;  // a changed slot of the previous walk: only frames at or outside it can match
  for (;;) {
    // A frame of the previous walk: the rest is the same if every outer slot still holds it.
    // A frame at the same sp with another pc (a shallower or deeper call at the same place)
    // does not end the search: its callers' frames may still be the previous walk's.
    while (k >= 0 && w->sp[k] < sp) k--;
    if (k >= 0 && k <= stale && w->sp[k] == sp && w->ip[k] == ip) {
      // Innermost slot first: a changed caller is most often a near one, and the first
      // changed slot found rules out every frame inside it.
      int m = k - 1;
      while (m >= 0 && *(const uintptr_t *)(w->sp[m] - 8) == w->ip[m]) m--;
      if (m < 0) {
        int total = n + w->cnt[k];
        if (total > depth) total = depth;
        if (!w->complete && total < depth) return slow_capture(out);
        if (k + 1 + nn > WALK_MAX) return slow_capture(out);
        *same_stack = (nn == 0 && k == last_n - 1 && total == t_last_n_out);
        *fresh = w->sid_ok ? k + 1 : 0;
        cache_put(w, k + 1, nip, nsp, nn);
        *filled = 0;
        return total;
      }
      stale = m;
    }
    if (nn == WALK_MAX) return slow_capture(out);
    nip[nn] = ip;
    nsp[nn++] = sp;
    if (!is_self(ip) && ++n >= depth) break;
    uint64_t e = atomic_load_explicit(uw_slot(ip), memory_order_relaxed);
    if ((e >> 17) != ip) return slow_capture(out);
    uint32_t st = e & 3, kq = (e >> 2) & UW_KQ_MAX;
    if (st == UW_STOP && kq == 0) {
      complete = 1;
      break;
    }
    if (st == UW_STOP) return backtrace_capture(out);
    if (st != UW_OK) return slow_capture(out);
    sp += (uintptr_t)kq * 8;
    if (sp > max_sp) return slow_capture(out);
    ip = *(const uintptr_t *)(sp - 8);
  }
  cache_put(w, 0, nip, nsp, nn);
  w->complete = complete;
  w->sid_ok = 0;
  *filled = 0;
  return n;
}

// Trie nodes by (parent stack id, pc), readable without the lock: a walk that shares its
// callers with the previous one only looks up its few new frames.
typedef struct {
  _Atomic uint64_t tag;  // 0 = empty; written last
  uintptr_t pc;
  uint32_t parent, id;
} tn_ent;
#define TN_BITS 20
#define TN_CAP (1u << TN_BITS)
static tn_ent *g_tn;
static size_t g_tn_count;

static inline uint64_t tn_tag(uint32_t parent, uintptr_t pc) { return mix64(pc ^ ((uint64_t)parent << 40) ^ parent) | 1; }

static uint32_t tn_lookup(uint64_t tag, uint32_t parent, uintptr_t pc) {
  size_t i = tag & (TN_CAP - 1);
  for (int probe = 0; probe < 64; probe++, i = (i + 1) & (TN_CAP - 1)) {
    uint64_t t = atomic_load_explicit(&g_tn[i].tag, memory_order_acquire);
    if (t == 0) return 0;
    if (t == tag && g_tn[i].pc == pc && g_tn[i].parent == parent) return g_tn[i].id;
  }
  return 0;
}

static void tn_insert(uint64_t tag, uint32_t parent, uintptr_t pc, uint32_t id) {
  if (g_tn_count * 4 > TN_CAP * 3) return;
  size_t i = tag & (TN_CAP - 1);
  for (int probe = 0; probe < 64; probe++, i = (i + 1) & (TN_CAP - 1)) {
    if (atomic_load_explicit(&g_tn[i].tag, memory_order_relaxed) != 0) continue;
    g_tn[i].pc = pc;
    g_tn[i].parent = parent;
    g_tn[i].id = id;
    atomic_store_explicit(&g_tn[i].tag, tag, memory_order_release);
    g_tn_count++;
    return;
  }
}

// The stack id of frame pc called from stack `parent`; 0 when the tables are full.
static uint32_t tn_get(lk_buf *b, uint32_t parent, uintptr_t pc) {
  uint64_t tag = tn_tag(parent, pc);
  uint32_t id = tn_lookup(tag, parent, pc);
  if (LK_LIKELY(id)) return id;
  pthread_mutex_lock(&g_mu);
  id = tn_lookup(tag, parent, pc);
  if (!id) {
    uint32_t f = frame_id(b, pc);
    id = f ? node_id(b, parent, f) : 0;
    if (id) tn_insert(tag, parent, pc, id);
  }
  pthread_mutex_unlock(&g_mu);
  return id;
}

// Whole-stack path: for truncated stacks (deeper than the depth limit) and cut walks.
static uint32_t intern_pcs(lk_buf *b, const uintptr_t *pcs, int n) {
  if (n == 0) return 0;
  uint64_t h = hash_pcs(pcs, n);
  uint32_t id = fs_lookup(h, pcs, n);
  if (LK_LIKELY(id)) return id;
  pthread_mutex_lock(&g_mu);
  id = fs_lookup(h, pcs, n);
  if (!id) {
    uint32_t parent = 0;
    for (int i = n - 1; i >= 0; i--) {
      uint32_t f = frame_id(b, pcs[i]);
      if (!f) { parent = 0; break; }
      parent = node_id(b, parent, f);
      if (!parent) break;
    }
    id = parent;
    if (id) fs_insert(h, pcs, n, id);
  }
  pthread_mutex_unlock(&g_mu);
  return id;
}

uint32_t lk_capture_stack(lk_buf *b) { return lk_capture_stack_from(b, 0, 0); }

uint32_t lk_capture_stack_from(lk_buf *b, uintptr_t ip, uintptr_t sp) {
  uintptr_t pcs[LK_MAX_DEPTH];
  int filled, same, fresh;
  int n = capture(pcs, &filled, &same, &fresh, ip, sp);
  if (same && t_last_id) return t_last_id;
  t_last_n_out = n;
  walk_cache *w = &t_walk;
  if (g_tn && w->complete && n < lk_depth && w->n > 0) {
    // All of the stack was walked and recorded: ids from the root down, reusing the callers'.
    int k = fresh;
    for (; k < w->n; k++) {
      uint32_t parent = k > 0 ? w->sid[k - 1] : 0;
      if (is_self(w->ip[k])) {
        w->sid[k] = parent;
        continue;
      }
      uint32_t id = tn_get(b, parent, w->ip[k]);
      if (!id) break;
      w->sid[k] = id;
    }
    if (k == w->n) {
      w->sid_ok = 1;
      return t_last_id = w->sid[w->n - 1];
    }
  }
  w->sid_ok = 0;
  if (!filled) n = cache_out(w, pcs);
  return t_last_id = intern_pcs(b, pcs, n);
}

static int self_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  if (info->dlpi_addr != (uintptr_t)arg) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (!lk_self_lo || lo < lk_self_lo) lk_self_lo = lo;
    if (lo + ph->p_memsz > lk_self_hi) lk_self_hi = lo + ph->p_memsz;
  }
  return 1;
}

void lk_stacks_init(void) {
  const char *uw = getenv("LEAKSCOPE_UNWIND");
  g_force_libunwind = uw && strcmp(uw, "libunwind") == 0;
  // Each exec'd image of a process numbers its frames and stacks from its own base, so ids of
  // an earlier image never name a later image's code.
  const char *gen = getenv("LEAKSCOPE_GEN");
  uint32_t g = gen ? (uint32_t)strtoul(gen, NULL, 10) % 256 : 0;
  g_next_frame = g_next_stack = (g << 23) + 1;
  ssize_t n = readlink("/proc/self/exe", g_exe, sizeof g_exe - 1);
  g_exe[n > 0 ? n : 0] = '\0';
  Dl_info di;
  if (dladdr((void *)lk_stacks_init, &di) && di.dli_fbase) dl_iterate_phdr(self_cb, di.dli_fbase);
  g_fs = lk_raw_mmap(FS_CAP * sizeof *g_fs);
  g_tn = lk_raw_mmap(TN_CAP * sizeof *g_tn);
  g_uw = lk_raw_mmap(sizeof(uint64_t) << UW_BITS);
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  uintptr_t warm[LK_MAX_DEPTH];
  int filled, same, fresh;
  capture(warm, &filled, &same, &fresh, 0, 0);  // libunwind's own set-up happens now, with our guard held
}

void lk_stacks_atfork_prepare(void) {
  pthread_mutex_lock(&scan_mu);
  pthread_mutex_lock(&g_mu);
}
void lk_stacks_atfork_parent(void) {
  pthread_mutex_unlock(&g_mu);
  pthread_mutex_unlock(&scan_mu);
}
void lk_stacks_atfork_child(void) {
  pthread_mutex_init(&g_mu, NULL);
  pthread_mutex_init(&scan_mu, NULL);
}
