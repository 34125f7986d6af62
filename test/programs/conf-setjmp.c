// Conformance: longjmp out of deep recursion that allocates, again and again, so the stacks
// after each jump reuse the stack memory the abandoned frames used.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Kept in a global, so the compiler cannot drop the allocations as unused.
void *volatile sink;

static jmp_buf env;
static long total;

__attribute__((noinline)) static void dive(int n, int bottom) {
  char *p = malloc(16 + n);
  memset(p, n, 16 + n);
  total += p[3];
  if (n == bottom) longjmp(env, n);
  dive(n + 1, bottom);
  free(p);
}

__attribute__((noinline)) static void *after_jump(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return sink = p;
}

int main(void) {
  int jumps = 0;
  for (int round = 0; round < 200; round++) {
    int r = setjmp(env);
    if (r == 0) dive(0, 5 + round % 17);
    jumps++;
    after_jump(8 + round % 5);
  }
  printf("jumps %d total %ld\n", jumps, total);
  return 0;
}
