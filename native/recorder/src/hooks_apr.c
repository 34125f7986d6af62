// APR pools (Apache httpd and everything built on libapr): the exported pool API, recorded as
// pool events of kind "apr". Interposition works because callers (httpd, its modules, and libapr
// itself, which calls these through its PLT) bind to the first definition: ours.
//
// Double counting: the mallocs APR makes inside apr_palloc/apr_pcalloc/apr_pool_create* are the
// pool's blocks; they are not recorded as heap allocations (lk_ts.in_apr), the pool allocations
// carved from them are. Frees are always recorded (a free of an unrecorded block is ignored by
// the engine), so heap memory freed by pool cleanups is never reported as leaked.
// Sampling (--sample) applies to pool allocations as to heap allocations.
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "enc.h"
#include "lk.h"

typedef int apr_status_t;

static apr_status_t (*r_create_ex)(void **, void *, void *, void *);
static apr_status_t (*r_create_unmanaged_ex)(void **, void *, void *);
static void (*r_destroy)(void *);
static void (*r_clear)(void *);
static void *(*r_palloc)(void *, size_t);
static void *(*r_pcalloc)(void *, size_t);
static void (*r_tag)(void *, const char *);
static void *(*r_parent_get)(void *);
static int g_resolved;

static void resolve(void) {
  if (g_resolved) return;
  lk_ts.guard++;
  r_create_ex = dlsym(RTLD_NEXT, "apr_pool_create_ex");
  r_create_unmanaged_ex = dlsym(RTLD_NEXT, "apr_pool_create_unmanaged_ex");
  r_destroy = dlsym(RTLD_NEXT, "apr_pool_destroy");
  r_clear = dlsym(RTLD_NEXT, "apr_pool_clear");
  r_palloc = dlsym(RTLD_NEXT, "apr_palloc");
  r_pcalloc = dlsym(RTLD_NEXT, "apr_pcalloc");
  r_tag = dlsym(RTLD_NEXT, "apr_pool_tag");
  r_parent_get = dlsym(RTLD_NEXT, "apr_pool_parent_get");
  lk_ts.guard--;
  g_resolved = 1;
}

static inline int recording(void) { return lk_state == 2 && !lk_ts.guard; }

static void rec_create(void *pool, void *parent, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  lk_ts.guard++;
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(64);
  if (b) {
    uint32_t st = lk_capture_stack_from(b, ip, sp, fp);
    lk_reserve(b, 64);
    lk_ev(b, R_POOL_CREATE, t);
    lk_var(b, (uintptr_t)pool);
    lk_var(b, (uintptr_t)parent);
    lk_var(b, st);
    lk_str(b, "apr", 3);
    lk_str(b, "", 0);
    lk_end(b);
  }
  lk_ts.guard--;
}

static void rec_pool_op(uint8_t type, void *pool, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  lk_ts.guard++;
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(48);
  if (b) {
    uint32_t st = lk_capture_stack_from(b, ip, sp, fp);
    lk_reserve(b, 48);
    lk_ev(b, type, t);
    lk_var(b, (uintptr_t)pool);
    lk_var(b, st);
    lk_end(b);
  }
  lk_ts.guard--;
}

static void rec_palloc(void *pool, size_t size, void *p, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  if (lk_sample_bytes && !lk_sample_inline(size)) return;
  lk_ts.guard++;
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(64);
  if (b) {
    uint32_t st = lk_capture_stack_from(b, ip, sp, fp);
    lk_reserve(b, 64);
    lk_ev(b, R_POOL_ALLOC, t);
    lk_var(b, (uintptr_t)pool);
    lk_var(b, size);
    lk_var(b, (uintptr_t)p);
    lk_var(b, st);
    lk_end(b);
  }
  lk_ts.guard--;
}

LK_EXPORT apr_status_t apr_pool_create_ex(void **newpool, void *parent, void *abort_fn, void *allocator) {
  resolve();
  if (!r_create_ex) return ENOMEM;
  lk_ts.in_apr++;
  apr_status_t rv = r_create_ex(newpool, parent, abort_fn, allocator);
  lk_ts.in_apr--;
  if (rv == 0 && recording()) {
    // A NULL parent means APR's global pool: ask APR for the real one.
    void *real_parent = r_parent_get ? r_parent_get(*newpool) : parent;
    rec_create(*newpool, real_parent, LK_CALLER);
  }
  return rv;
}

LK_EXPORT apr_status_t apr_pool_create_unmanaged_ex(void **newpool, void *abort_fn, void *allocator) {
  resolve();
  if (!r_create_unmanaged_ex) return ENOMEM;
  lk_ts.in_apr++;
  apr_status_t rv = r_create_unmanaged_ex(newpool, abort_fn, allocator);
  lk_ts.in_apr--;
  if (rv == 0 && recording()) rec_create(*newpool, NULL, LK_CALLER);
  return rv;
}

// Destroy and clear are recorded after the call: APR destroys the children first (through
// these same hooks), so a pool's children are gone before it.
LK_EXPORT void apr_pool_destroy(void *pool) {
  resolve();
  if (!r_destroy) return;
  r_destroy(pool);
  if (recording()) rec_pool_op(R_POOL_DESTROY, pool, LK_CALLER);
}

LK_EXPORT void apr_pool_clear(void *pool) {
  resolve();
  if (!r_clear) return;
  r_clear(pool);
  if (recording()) rec_pool_op(R_POOL_CLEAR, pool, LK_CALLER);
}

LK_EXPORT void *apr_palloc(void *pool, size_t size) {
  resolve();
  if (!r_palloc) return NULL;
  lk_ts.in_apr++;
  void *p = r_palloc(pool, size);
  lk_ts.in_apr--;
  if (p && recording()) rec_palloc(pool, size, p, LK_CALLER);
  return p;
}

LK_EXPORT void *apr_pcalloc(void *pool, size_t size) {
  resolve();
  if (!r_pcalloc) return NULL;
  lk_ts.in_apr++;
  void *p = r_pcalloc(pool, size);
  lk_ts.in_apr--;
  if (p && recording()) rec_palloc(pool, size, p, LK_CALLER);
  return p;
}

LK_EXPORT void apr_pool_tag(void *pool, const char *tag) {
  resolve();
  if (!r_tag) return;
  r_tag(pool, tag);
  if (!recording() || !tag) return;
  lk_ts.guard++;
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(300);
  if (b) {
    lk_ev(b, R_POOL_TAG, t);
    lk_var(b, (uintptr_t)pool);
    lk_str(b, tag, 256);
    lk_end(b);
  }
  lk_ts.guard--;
}
