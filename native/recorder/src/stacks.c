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
#include <fcntl.h>
#include <elf.h>
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
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

static void uw_forget(uintptr_t lo, uintptr_t hi);

// --- modules ----------------------------------------------------------------------------------

typedef struct {
  uintptr_t lo, hi, offset;
  const char *path;
  char build_id[41];
  int dead;  // unloaded (dlclose): kept, to name the frames recorded while it was there
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
  // Modules gone since the last scan (dlclose): what was learned about their code is dropped,
  // libunwind's caches too, so nothing stale is followed if other code is mapped there.
  int forgot = 0;
  for (int k = 0; k < g_nmods; k++) {
    if (g_mods[k].dead) continue;
    int present = 0;
    for (int i = 0; i < ctx.n && !present; i++)
      present = g_mods[k].lo == ctx.found[i].lo && g_mods[k].hi == ctx.found[i].hi && strcmp(g_mods[k].path, ctx.found[i].path) == 0;
    if (present) continue;
    g_mods[k].dead = 1;
    uw_forget(g_mods[k].lo, g_mods[k].hi);
    forgot = 1;
  }
  for (int i = 0; i < ctx.n; i++) {
    module *f = &ctx.found[i];
    int known = 0;
    for (int k = 0; k < g_nmods; k++)
      if (!g_mods[k].dead && g_mods[k].lo == f->lo && g_mods[k].hi == f->hi && strcmp(g_mods[k].path, f->path) == 0) { known = 1; break; }
    if (known || g_nmods >= MAX_MODULES) continue;
    size_t len = strlen(f->path);
    char *copy = arena_alloc(len + 1);
    if (!copy) continue;
    memcpy(copy, f->path, len + 1);
    // A library loaded where an unloaded one was replaces it.
    int slot = g_nmods;
    for (int k = 0; k < g_nmods; k++)
      if (g_mods[k].lo < f->hi && f->lo < g_mods[k].hi) { slot = k; break; }
    if (slot != g_nmods) {
      uw_forget(f->lo, f->hi);
      forgot = 1;
    }
    g_mods[slot] = *f;
    g_mods[slot].path = copy;
    g_mods[slot].dead = 0;
    if (slot == g_nmods) g_nmods++;
    lk_reserve(b, len + 120);
    lk_ev(b, R_MODULE, lk_now());
    lk_var(b, f->lo);
    lk_var(b, f->hi - f->lo);
    lk_var(b, f->offset);
    lk_str(b, copy, len);
    lk_str(b, f->build_id, 40);
  }
  if (forgot) unw_flush_cache(unw_local_addr_space, 0, 0);
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
// libunwind for good.
//
// What a walk may touch, so that it can never fault or overflow in the traced program:
// - The fast walk reads only the thread's own stack, between the caller's sp and the outermost
//   frame's sp, both inside the stack mapping found for the thread (struct lk_walk: lo, hi).
//   A walk starting anywhere else (a signal's alternate stack, a coroutine's stack, a clone()
//   child sharing this thread's TLS) is left to libunwind, which follows the unwind tables only.
// - libunwind is never asked to step through a frame whose pc lies in no loaded object
//   (_dl_find_object): after a dlclose() such a frame's unwind tables are gone (httpd calls
//   exit() from its MPM module and unloads that module in an exit handler), and JIT code has
//   none. The walk records that frame and ends there.
// - libunwind runs on a side stack that comes with the thread's buffer (LK_SIDE_STACK), with
//   asynchronous signals blocked meanwhile (a program's handler must not run on our stack), so
//   a thread on a 16 KiB stack (PTHREAD_STACK_MIN) has room for the program, not for us. The
//   state of the walks lives there too: nothing big is on the caller's stack or in TLS.

#define UW_BITS 16
#define UW_KQ_MAX 0x7FFF
enum { UW_ONCE = 1, UW_OK = 2, UW_STOP = 3 };  // UW_STOP: kq 0 = outermost frame, else unusable
static _Atomic uint64_t *g_uw;                // ip (47 bits) | kq = K / 8 (15 bits) | state (2 bits)

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

// Forgets what was learned about pcs in [lo, hi) (a library unloaded, or another mapped there).
static void uw_forget(uintptr_t lo, uintptr_t hi) {
  if (!g_uw) return;
  for (size_t i = 0; i < ((size_t)1 << UW_BITS); i++) {
    uintptr_t ip = (uintptr_t)(atomic_load_explicit(&g_uw[i], memory_order_relaxed) >> 17);
    if (ip >= lo && ip < hi) atomic_store_explicit(&g_uw[i], 0, memory_order_relaxed);
  }
}

static inline int is_self(uintptr_t ip) { return ip >= lk_self_lo && ip < lk_self_hi; }

// A return address inside a loaded object (its unwind tables are mapped). Lock-free.
static inline int is_live(uintptr_t ip) {
  struct dl_find_object r;
  return ip > 1 && _dl_find_object((void *)(ip - 1), &r) == 0;
}

// The thread's previous walk, every frame as (pc, sp), outermost FIRST. Consecutive allocations
// mostly share their callers: once the new walk reaches a frame of the previous one (same pc at
// the same sp), checking that each outer return-address slot still holds the same pc (loads
// that do not depend on each other) proves the rest of the stack is unchanged. Kept root first,
// the shared callers stay in place with their stack ids: only the new leaf frames are written.
// Only walks of the thread's own stack are kept (their slots stay mapped while it lives).
#define WALK_MAX (LK_MAX_DEPTH + 32)
typedef struct {
  int n, complete;  // complete: [0] is the outermost frame
  int sid_ok;       // sid[k] holds the stack id of frames 0..k (root to k)
  uintptr_t ip[WALK_MAX], sp[WALK_MAX];
  uint32_t sid[WALK_MAX];
  uint16_t cnt[WALK_MAX];  // frames outside our library among 0..k
} walk_cache;

// Per-thread unwinding state, in the thread's buffer mapping (see lk_buf).
struct lk_walk {
  int bounds;            // 0: not looked up yet, 1: [lo, hi) is the stack, -1: unknown
  int rebounds;          // times the mapping was looked up again
  uintptr_t lo, hi;      // the mapping holding the thread's own stack
  uintptr_t max_sp;      // sp of the outermost frame, once libunwind reached it (0: not yet)
  unsigned count;        // walks so far (every 4096th is libunwind's, re-checking the table)
  uint32_t last_id;      // the previous walk's stack id, reused when a walk is all the same
  int last_n_out;        // and its number of recorded frames
  sigset_t saved_mask;   // the thread's signal mask while libunwind runs on the side stack
  walk_cache c;
  uintptr_t pcs[WALK_MAX];                // recorded frames, leaf first
  uintptr_t nip[WALK_MAX], nsp[WALK_MAX];  // a walk's new frames, leaf first
};

size_t lk_walk_size(void) { return sizeof(struct lk_walk); }
void lk_walk_reset(struct lk_walk *w) { memset(w, 0, offsetof(struct lk_walk, c) + offsetof(walk_cache, ip)); }

static int g_force_libunwind;  // LEAKSCOPE_UNWIND=libunwind: every walk by libunwind (tests, doubt)

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

// --- the side stack ---

// lk_on_stack(arg, fn, top): calls fn(arg) with the stack pointer at `top`, and returns. Its
// frame keeps the caller's stack pointer in rbp (and says so in its CFI), so debuggers and
// unwinders still see the whole call chain.
#if defined(__x86_64__)
void lk_on_stack(void *arg, void (*fn)(void *), void *top);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type lk_on_stack, @function\n"
    ".hidden lk_on_stack\n"
    "lk_on_stack:\n"
    ".cfi_startproc\n"
    "  push %rbp\n"
    ".cfi_def_cfa_offset 16\n"
    ".cfi_offset %rbp, -16\n"
    "  mov %rsp, %rbp\n"
    ".cfi_def_cfa_register %rbp\n"
    "  mov %rdx, %rsp\n"
    "  call *%rsi\n"
    "  mov %rbp, %rsp\n"
    "  pop %rbp\n"
    ".cfi_def_cfa %rsp, 8\n"
    "  ret\n"
    ".cfi_endproc\n"
    ".size lk_on_stack, .-lk_on_stack\n");
#define LK_HAVE_SIDE_STACK 1
#else
static void lk_on_stack(void *arg, void (*fn)(void *), void *top) { fn(arg); }
#define LK_HAVE_SIDE_STACK 0
#endif

// Runs fn(arg) on the buffer's side stack with asynchronous signals blocked. Faults (SIGSEGV,
// SIGBUS, SIGILL, SIGFPE, SIGTRAP) stay deliverable: blocked, the kernel would kill silently.
// The signal sets (128 bytes each) are kept off the caller's stack too.
static sigset_t g_async;  // every signal but the faults, filled once
static void on_side_stack(lk_buf *b, void (*fn)(void *), void *arg) {
  sigset_t *old = &b->walk->saved_mask;
  pthread_sigmask(SIG_BLOCK, &g_async, old);
  lk_on_stack(arg, fn, b->side_top);
  pthread_sigmask(SIG_SETMASK, old, NULL);
}

// --- the thread's stack mapping ---

static uint64_t hex_field(const char **p) {
  uint64_t v = 0;
  for (;; (*p)++) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return v;
    v = v * 16 + (uint64_t)d;
  }
}

// The mapping holding sp, from /proc/self/maps (raw reads: no allocation). The main thread's
// mapping grows down, up to the stack size limit (at most 8 MiB taken here; deeper frames are
// walked by libunwind). Returns 0 when it cannot be read (no /proc).
static int stack_mapping(uintptr_t sp, uintptr_t *lo, uintptr_t *hi) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096], line[512];
  size_t ln = 0;
  uintptr_t prev_end = 0;
  int found = 0;
  for (;;) {
    ssize_t r = syscall(SYS_read, fd, buf, sizeof buf);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r && !found; i++) {
      if (buf[i] != '\n') {
        if (ln < sizeof line - 1) line[ln++] = buf[i];
        continue;
      }
      line[ln] = '\0';
      ln = 0;
      const char *p = line;
      uintptr_t start = (uintptr_t)hex_field(&p);
      if (*p++ != '-') continue;
      uintptr_t end = (uintptr_t)hex_field(&p);
      if (sp >= start && sp < end) {
        *lo = start;
        *hi = end;
        if (strstr(line, "[stack]")) {
          struct rlimit rl;
          uintptr_t lim = 8u << 20;
          if (syscall(SYS_getrlimit, RLIMIT_STACK, &rl) == 0 && rl.rlim_cur < lim) lim = rl.rlim_cur;
          uintptr_t grow = end - lim > prev_end ? end - lim : prev_end;
          if (grow < start) *lo = grow;
        }
        found = 1;
      }
      prev_end = end;
    }
    if (found) break;
  }
  syscall(SYS_close, fd);
  return found;
}

static void find_bounds(struct lk_walk *W, uintptr_t sp) {
  uintptr_t lo = 0, hi = 0;
  if (stack_mapping(sp, &lo, &hi)) {
    W->lo = lo;
    W->hi = hi;
    W->bounds = 1;
    return;
  }
  // No /proc: glibc knows the thread's stack (it may allocate; we are in our own hook).
  pthread_attr_t a;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &a) == 0) {
    if (pthread_attr_getstack(&a, &addr, &size) == 0 && sp >= (uintptr_t)addr && sp < (uintptr_t)addr + size) {
      W->lo = (uintptr_t)addr;
      W->hi = (uintptr_t)addr + size;
      W->bounds = 1;
    }
    pthread_attr_destroy(&a);
  }
  if (W->bounds != 1) W->bounds = -1;
}

static inline int own_stack(const struct lk_walk *W, uintptr_t sp) { return W->bounds == 1 && sp >= W->lo && sp < W->hi; }

// --- libunwind's walk ---

// libunwind's walk from the given frame (pc = a return address, its sp and rbp), teaching the
// table. Records up to lk_depth frames outside our library into W->pcs. Runs on the side stack.
typedef struct { struct lk_walk *W; uintptr_t ip, sp, fp; int n; } slow_args;

static void slow_walk(void *arg) {
  slow_args *a = arg;
  struct lk_walk *W = a->W;
  walk_cache *wc = &W->c;
  if (W->bounds == 0) find_bounds(W, a->sp);
  const int own = own_stack(W, a->sp);
  uintptr_t *out = W->pcs, *lip = W->nip, *lsp = W->nsp;
  int ln = 0, complete = 0, n = 0;
  wc->n = 0;
  wc->complete = 0;
  wc->sid_ok = 0;
  a->n = 0;
  unw_context_t uc;
  memset(&uc, 0, sizeof uc);
#if defined(__x86_64__)
  // Starts at the hook's caller. libunwind takes a context's pc as a return address (it looks
  // up pc - 1), as it is here. CFA rules of gcc's code use rsp or rbp only.
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)a->ip;
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)a->sp;
  uc.uc_mcontext.gregs[REG_RBP] = (greg_t)a->fp;
#else
  unw_getcontext(&uc);
#endif
  unw_cursor_t c;
  if (!is_live(a->ip)) {
    out[0] = a->ip;
    a->n = 1;
    return;
  }
  if (unw_init_local(&c, &uc) < 0) return;
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
    if (steps > 0 && !is_live(ip)) break;  // no unwind tables to step through: the stack ends here
    int r = unw_step(&c);
    if (r <= 0) {
      if (r == 0) {
        uw_learn_outermost(pip);
        if (own && psp < W->hi && psp > W->max_sp) W->max_sp = psp;
        // The mapping found was not the thread's own stack (its first walk came from a signal's
        // alternate stack): look again at a later walk, a few times.
        if (own && !W->max_sp && psp >= W->hi && ++W->rebounds < 8) W->bounds = 0;
        complete = ln < WALK_MAX;
      }
      break;
    }
    if (n >= lk_depth && W->max_sp) break;
  }
  // Only a whole walk (or one reaching the depth limit) of the thread's own stack is a usable cache.
  if (own && (complete || n >= lk_depth)) {
    // cache_put takes leaf-first arrays: lip/lsp are leaf first already.
    cache_put(wc, 0, lip, lsp, ln);
    wc->complete = complete;
  }
  a->n = n;
}

// libunwind's walk on the side stack; the frames are in W->pcs.
__attribute__((noinline)) static int slow_capture(lk_buf *b, struct lk_walk *W, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  slow_args a = {W, ip, sp, fp, 0};
  on_side_stack(b, slow_walk, &a);
  return a.n;
}

// The fast walk starts at the hook's caller: pc = the hook's return address, sp = its canonical
// frame address (the compiler knows it, frame pointer or not). Returns the frame count; *filled:
// W->pcs holds the frames (else they are in W->c only, see cache_out); *same is set when the
// stack is exactly the previous walk's; *fresh is the first cache position (root first) whose
// sid[] is not known yet. Runs on the caller's stack with a small frame: all arrays are in W.
__attribute__((noinline)) static int capture(lk_buf *b, struct lk_walk *W, int *filled, int *same_stack, int *fresh, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  *same_stack = 0;
  *fresh = 0;
  *filled = 1;
  // Every 4096th walk is libunwind's, re-checking what the table learned: a pc whose frame size
  // only looked fixed (alloca of the same size twice) is caught and handed back to libunwind.
  if (LK_UNLIKELY(!W->max_sp) || LK_UNLIKELY((++W->count & 4095) == 0) || LK_UNLIKELY(g_force_libunwind)) return slow_capture(b, W, ip, sp, fp);
  // The fast walk reads [sp, max_sp]: both in the thread's own stack mapping, or libunwind walks.
  if (LK_UNLIKELY(sp < W->lo) || LK_UNLIKELY(sp >= W->hi)) return slow_capture(b, W, ip, sp, fp);
  const uintptr_t max_sp = W->max_sp, ip0 = ip, sp0 = sp;
  walk_cache *w = &W->c;
  const int depth = lk_depth, last_n = w->n;
  uintptr_t *nip = W->nip, *nsp = W->nsp;  // the new frames, leaf first
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
        if (!w->complete && total < depth) return slow_capture(b, W, ip0, sp0, fp);
        if (k + 1 + nn > WALK_MAX) return slow_capture(b, W, ip0, sp0, fp);
        *same_stack = (nn == 0 && k == last_n - 1 && total == W->last_n_out);
        *fresh = w->sid_ok ? k + 1 : 0;
        cache_put(w, k + 1, nip, nsp, nn);
        *filled = 0;
        return total;
      }
      stale = m;
    }
    if (nn == WALK_MAX) return slow_capture(b, W, ip0, sp0, fp);
    nip[nn] = ip;
    nsp[nn++] = sp;
    if (!is_self(ip) && ++n >= depth) break;
    uint64_t e = atomic_load_explicit(uw_slot(ip), memory_order_relaxed);
    if ((e >> 17) != ip) return slow_capture(b, W, ip0, sp0, fp);
    uint32_t st = e & 3, kq = (e >> 2) & UW_KQ_MAX;
    if (st == UW_STOP && kq == 0) {
      complete = 1;
      break;
    }
    // Not learned yet, or a frame of changing size (alloca, a signal frame): libunwind's walk.
    if (st != UW_OK) return slow_capture(b, W, ip0, sp0, fp);
    sp += (uintptr_t)kq * 8;
    if (sp > max_sp) return slow_capture(b, W, ip0, sp0, fp);
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

uint32_t lk_capture_stack_from(lk_buf *b, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  struct lk_walk *W = b->walk;
  int filled, same, fresh;
  int n = capture(b, W, &filled, &same, &fresh, ip, sp, fp);
  if (same && W->last_id) return W->last_id;
  W->last_n_out = n;
  walk_cache *w = &W->c;
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
      return W->last_id = w->sid[w->n - 1];
    }
  }
  w->sid_ok = 0;
  if (!filled) n = cache_out(w, W->pcs);
  return W->last_id = intern_pcs(b, W->pcs, n);
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
  sigfillset(&g_async);
  sigdelset(&g_async, SIGSEGV);
  sigdelset(&g_async, SIGBUS);
  sigdelset(&g_async, SIGILL);
  sigdelset(&g_async, SIGFPE);
  sigdelset(&g_async, SIGTRAP);
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
