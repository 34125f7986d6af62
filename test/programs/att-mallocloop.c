/* att-mallocloop: an unrelated, allocation-heavy process for bench/attach.bench.ts: N rounds of
 * malloc/free; prints the elapsed seconds. Tracing another process must not slow it down. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
  long n = argc > 1 ? atol(argv[1]) : 5000000;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  volatile unsigned long sink = 0;
  for (long i = 0; i < n; i++) {
    char *p = malloc(32 + (i & 255));
    if (!p) return 1;
    p[0] = (char)i;
    sink += (unsigned long)p[0];
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
