/* Known leaks for the heaptrack source test (compared with heaptrack_print --print-leaks).
 * leak_small: 50 x 64 bytes never freed; leak_big: 3 x 100000 never freed (one through an
 * inlined helper); churn: many temporary and freed allocations; one realloc chain. */
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

__attribute__((noinline)) void churn(int n) {
  for (int i = 0; i < n; i++) {
    char *volatile p = malloc(32 + (i % 200));
    p[0] = 1;
    free(p);
  }
  char *r = malloc(10);
  for (int i = 0; i < 20; i++) r = realloc(r, 10 + i * 100);
  free(r);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  churn(n);
  leak_small();
  leak_big();
  return 0;
}
