// The malloc family and anonymous mmap/munmap.
//
// The real functions come from dlsym(RTLD_NEXT). dlsym itself may allocate (calloc for its
// error state): while resolving, allocations are served from a static bootstrap arena whose
// blocks are never freed. Every hook records only when the recorder runs, the thread is not
// already inside our machinery (lk_ts.guard) and, for allocations, not inside an APR pool
// allocation (those mallocs are pool blocks, counted as pool allocations instead).
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lk.h"

static void *(*r_malloc)(size_t);
static void (*r_free)(void *);
static void *(*r_calloc)(size_t, size_t);
static void *(*r_realloc)(void *, size_t);
static int (*r_posix_memalign)(void **, size_t, size_t);
static void *(*r_aligned_alloc)(size_t, size_t);
static void *(*r_memalign)(size_t, size_t);
static void *(*r_valloc)(size_t);
static void *(*r_pvalloc)(size_t);
static void *(*r_mmap)(void *, size_t, int, int, int, off_t);
static int (*r_munmap)(void *, size_t);

static int g_resolving;
static _Alignas(64) uint8_t g_boot[256 * 1024];
static size_t g_boot_used;

static void *boot_alloc(size_t n) {
  size_t need = ((n + 15) & ~(size_t)15) + 16;
  if (g_boot_used + need > sizeof g_boot) return NULL;
  uint8_t *p = g_boot + g_boot_used;
  g_boot_used += need;
  memcpy(p, &n, sizeof n);  // size header, for realloc
  return p + 16;
}

static inline int is_boot(const void *p) {
  return (const uint8_t *)p >= g_boot && (const uint8_t *)p < g_boot + sizeof g_boot;
}

static void resolve(void) {
  if (g_resolving) return;
  g_resolving = 1;
  r_malloc = dlsym(RTLD_NEXT, "malloc");
  r_free = dlsym(RTLD_NEXT, "free");
  r_calloc = dlsym(RTLD_NEXT, "calloc");
  r_realloc = dlsym(RTLD_NEXT, "realloc");
  r_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  r_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  r_memalign = dlsym(RTLD_NEXT, "memalign");
  r_valloc = dlsym(RTLD_NEXT, "valloc");
  r_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
  r_mmap = dlsym(RTLD_NEXT, "mmap");
  r_munmap = dlsym(RTLD_NEXT, "munmap");
  g_resolving = 0;
}

#define ENSURE_REAL(fn, fallback)                     \
  do {                                                \
    if (LK_UNLIKELY(!fn)) {                           \
      if (g_resolving) return fallback;               \
      resolve();                                      \
      if (!fn) return fallback;                       \
    }                                                 \
  } while (0)

// Lazy start: allocations can come before our constructor (other constructors, the loader).
static inline void maybe_init(void) {
  if (LK_UNLIKELY(lk_state == 0) && !lk_ts.guard && !g_resolving) lk_init();
}

static inline int recording(void) { return lk_state == 2 && !lk_ts.guard; }

// The allocating frame: the hook's caller (LK_CALLER, taken in the exported hook).
#define AFTER_ALLOC(p, n) after_alloc(p, n, LK_CALLER_IP, LK_CALLER_SP, (uintptr_t)__builtin_frame_address(0))

// Out of line, so the hooks' common path (the sampled countdown) saves no registers. `hook_fp`
// is the hook's frame address: the caller's rbp is read from it only here, off the fast path.
__attribute__((noinline)) static void after_alloc_slow(void *p, size_t n, uintptr_t ip, uintptr_t sp, uintptr_t hook_fp) {
  maybe_init();
  if (LK_LIKELY(p != NULL) && recording() && !lk_ts.in_apr) {
    if (lk_sample_bytes && !lk_sample_inline(n)) return;
    lk_ts.guard++;
    lk_rec_alloc_from(p, n, ip, sp, *(const uintptr_t *)hook_fp);
    lk_ts.guard--;
  }
}

static inline void after_alloc(void *p, size_t n, uintptr_t ip, uintptr_t sp, uintptr_t hook_fp) {
  if (lk_sample_bytes) {  // the sampled fast path: most allocations only count down
    int64_t left = lk_ts.sample_left - (int64_t)n;
    if (LK_LIKELY(left > 0)) {
      lk_ts.sample_left = left;
      return;
    }
  }
  after_alloc_slow(p, n, ip, sp, hook_fp);
}

LK_EXPORT void *malloc(size_t n) {
  ENSURE_REAL(r_malloc, boot_alloc(n));
  void *p = r_malloc(n);
  AFTER_ALLOC(p, n);
  return p;
}

LK_EXPORT void free(void *p) {
  if (!p || is_boot(p)) return;
  ENSURE_REAL(r_free, );
  if (lk_sample_bytes && !lk_maybe_sampled((uintptr_t)p)) {  // the sampled fast path
    r_free(p);
    return;
  }
  if (recording()) {
    lk_ts.guard++;
    lk_rec_free(p);
    lk_ts.guard--;
  }
  r_free(p);
}

LK_EXPORT void *calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  if (LK_UNLIKELY(!r_calloc)) {
    if (g_resolving) return boot_alloc(total);  // static memory is zeroed
    resolve();
    if (!r_calloc) return NULL;
  }
  void *p = r_calloc(n, size);
  AFTER_ALLOC(p, total);
  return p;
}

LK_EXPORT void *realloc(void *old, size_t n) {
  if (old && is_boot(old)) {
    size_t had;
    memcpy(&had, (uint8_t *)old - 16, sizeof had);
    void *p = malloc(n);
    if (p) memcpy(p, old, had < n ? had : n);
    return p;
  }
  ENSURE_REAL(r_realloc, NULL);
  maybe_init();
  if (!recording() || lk_ts.in_apr) return r_realloc(old, n);
  if (old && n == 0) {  // glibc frees and returns NULL
    lk_ts.guard++;
    lk_rec_free(old);
    lk_ts.guard--;
    return r_realloc(old, n);
  }
  void *p = r_realloc(old, n);
  if (!p) return NULL;  // failed: the old block is untouched
  lk_ts.guard++;
  if (!old) {
    if (!lk_sample_bytes || lk_sample_inline(n)) lk_rec_alloc_from(p, n, LK_CALLER);
  } else {
    lk_rec_realloc(old, p, n, LK_CALLER);
  }
  lk_ts.guard--;
  return p;
}

LK_EXPORT void *reallocarray(void *old, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(old, total);
}

LK_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  ENSURE_REAL(r_posix_memalign, ENOMEM);
  int rc = r_posix_memalign(out, align, n);
  if (rc == 0) AFTER_ALLOC(*out, n);
  return rc;
}

LK_EXPORT void *aligned_alloc(size_t align, size_t n) {
  ENSURE_REAL(r_aligned_alloc, NULL);
  void *p = r_aligned_alloc(align, n);
  AFTER_ALLOC(p, n);
  return p;
}

LK_EXPORT void *memalign(size_t align, size_t n) {
  ENSURE_REAL(r_memalign, NULL);
  void *p = r_memalign(align, n);
  AFTER_ALLOC(p, n);
  return p;
}

LK_EXPORT void *valloc(size_t n) {
  ENSURE_REAL(r_valloc, NULL);
  void *p = r_valloc(n);
  AFTER_ALLOC(p, n);
  return p;
}

LK_EXPORT void *pvalloc(size_t n) {
  ENSURE_REAL(r_pvalloc, NULL);
  void *p = r_pvalloc(n);
  AFTER_ALLOC(p, n);
  return p;
}

// --- anonymous mappings ---------------------------------------------------------------------

static void *sys_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off) {
  long r = syscall(SYS_mmap, a, n, prot, flags, fd, off);
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return MAP_FAILED;
  }
  return (void *)r;
}

LK_EXPORT void *mmap(void *a, size_t n, int prot, int flags, int fd, off_t off) {
  void *p = r_mmap ? r_mmap(a, n, prot, flags, fd, off) : sys_mmap(a, n, prot, flags, fd, off);
  // Mappings APR makes inside its pool calls (Debian's APR maps its allocator nodes) are the
  // pools' blocks, like their mallocs: the pool allocations carved from them are recorded.
  if (p != MAP_FAILED && (flags & MAP_ANONYMOUS) && recording() && !lk_ts.in_apr) {
    lk_ts.guard++;
    lk_rec_mmap(p, n, prot, flags, LK_CALLER);
    lk_ts.guard--;
  }
  return p;
}

LK_EXPORT void *mmap64(void *a, size_t n, int prot, int flags, int fd, off_t off) {
  return mmap(a, n, prot, flags, fd, off);
}

LK_EXPORT int munmap(void *p, size_t n) {
  int rc = r_munmap ? r_munmap(p, n) : (int)syscall(SYS_munmap, p, n);
  if (rc == 0 && recording()) {
    lk_ts.guard++;
    lk_rec_munmap(p, n);
    lk_ts.guard--;
  }
  return rc;
}
