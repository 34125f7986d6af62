// APR's pool API called directly (libapr1 from Debian): a managed tree, a cleared pool, a
// destroyed pool, an unmanaged pool, apr_palloc and the exported apr_pcalloc function.
// Kept at exit: "kept" 10 x 300 (keep_in_pool) + 5 x 200 (zero_in_pool), "cleared" 3 x 50
// (after_clear; its 20 x 100 were cleared), "unmanaged" 2 x 400 (in_unmanaged).
#include <apr_general.h>
#include <apr_pools.h>
#include <string.h>

#undef apr_pcalloc  // the header makes it a macro over apr_palloc; call the exported function
APR_DECLARE(void *) apr_pcalloc(apr_pool_t *p, apr_size_t size);

#define SITE(name, fn)                                                         \
  __attribute__((noinline)) void *name(apr_pool_t *p, apr_size_t n) {          \
    char *q = fn(p, n);                                                        \
    *(volatile char *)q = 1;                                                   \
    return q;                                                                  \
  }

SITE(keep_in_pool, apr_palloc)
SITE(zero_in_pool, apr_pcalloc)
SITE(before_clear, apr_palloc)
SITE(after_clear, apr_palloc)
SITE(in_destroyed, apr_palloc)
SITE(in_unmanaged, apr_palloc)

int main(void) {
  if (apr_initialize() != APR_SUCCESS) return 2;
  apr_pool_t *root, *kept, *cleared, *gone, *un;
  if (apr_pool_create_ex(&root, NULL, NULL, NULL) != APR_SUCCESS) return 3;
  apr_pool_tag(root, "app-root");
  apr_pool_create_ex(&kept, root, NULL, NULL);
  apr_pool_tag(kept, "kept");
  apr_pool_create_ex(&cleared, root, NULL, NULL);
  apr_pool_tag(cleared, "cleared");
  apr_pool_create_ex(&gone, root, NULL, NULL);
  apr_pool_tag(gone, "gone");
  if (apr_pool_create_unmanaged_ex(&un, NULL, NULL) != APR_SUCCESS) return 4;
  apr_pool_tag(un, "unmanaged");

  for (int i = 0; i < 10; i++) keep_in_pool(kept, 300);
  for (int i = 0; i < 5; i++) zero_in_pool(kept, 200);
  for (int i = 0; i < 20; i++) before_clear(cleared, 100);
  apr_pool_clear(cleared);
  for (int i = 0; i < 3; i++) after_clear(cleared, 50);
  for (int i = 0; i < 8; i++) in_destroyed(gone, 1000);
  apr_pool_destroy(gone);
  for (int i = 0; i < 2; i++) in_unmanaged(un, 400);
  return 0;  // no apr_terminate: the pools are still there at exit
}
