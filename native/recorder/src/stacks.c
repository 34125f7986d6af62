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

void lk_modules_scan(lk_buf *b) {
  static scan_ctx ctx;  // big: not on the stack; scans are serialised by g_scan_mu
  static pthread_mutex_t scan_mu = PTHREAD_MUTEX_INITIALIZER;
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

static inline uint64_t hash_pcs(const uintptr_t *pcs, int n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
  for (int i = 0; i < n; i++) h = mix64(h ^ pcs[i]) + 0x9e3779b97f4a7c15ull;
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

static int capture(uintptr_t *pcs) {
  void *raw[LK_MAX_DEPTH + 16];
  int n = unw_backtrace(raw, lk_depth + 16);
  int i = 0, m = 0;
  while (i < n && (uintptr_t)raw[i] >= lk_self_lo && (uintptr_t)raw[i] < lk_self_hi) i++;
  for (; i < n && m < lk_depth; i++) pcs[m++] = (uintptr_t)raw[i];
  return m;
}

uint32_t lk_capture_stack(lk_buf *b) {
  uintptr_t pcs[LK_MAX_DEPTH + 16];
  int n = capture(pcs);
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
  unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
  void *warm[4];
  unw_backtrace(warm, 4);  // libunwind's own set-up happens now, with our guard held
}

void lk_stacks_atfork_prepare(void) { pthread_mutex_lock(&g_mu); }
void lk_stacks_atfork_parent(void) { pthread_mutex_unlock(&g_mu); }
void lk_stacks_atfork_child(void) { pthread_mutex_init(&g_mu, NULL); }
