/* Known leaks for the heaptrack source test (compared with heaptrack_print --print-leaks).
 * leak_small: 50 x 64 bytes never freed; leak_big: 3 x 100000 never freed (one through an
 * inlined helper); churn: many temporary and freed allocations; one realloc chain.
 * `ht-leak N [HOLD]`: with HOLD > 0 each churn allocation is freed HOLD allocations later (a
 * ring of HOLD live blocks, like a server's in-flight requests) instead of at once. */
#include <stdlib.h>
#include <string.h>

void *keep[1024];
int nkeep;

__attribute__((noinline)) void leak_small(void) {
  for (int i = 0; i < 50; i++) keep[nkeep++] = malloc(64);
}

static inline __attribute__((always_inline)) void *big_inline(size_t n) { return malloc(n); }

__attribute__((noinline)) void leak_big(void) {
  for (int i = 0; i < 3; i++) {
    char *p = big_inline(100000);
    memset(p, 1, 100000);
    keep[nkeep++] = p;
  }
}

static char *ring[4096];

__attribute__((noinline)) void churn(int n, int hold) {
  for (int i = 0; i < n; i++) {
    char *volatile p = malloc(32 + (i % 200));
    p[0] = 1;
    if (hold <= 0) {
      free(p);
      continue;
    }
    free(ring[i % hold]);
    ring[i % hold] = p;
  }
  for (int i = 0; i < hold; i++) free(ring[i]);
  char *r = malloc(10);
  for (int i = 0; i < 20; i++) r = realloc(r, 10 + i * 100);
  free(r);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  int hold = argc > 2 ? atoi(argv[2]) : 0;
  if (hold > 4096) hold = 4096;
  churn(n, hold);
  leak_small();
  leak_big();
  return 0;
}
