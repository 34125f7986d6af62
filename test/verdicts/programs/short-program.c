/* A short program that keeps 64,000 B in a loop and exits without freeing them: under `run` its
 * whole life is a few milliseconds, one or two ticks of the recorder's clock. */
#include <stdlib.h>
#include <string.h>

static void *volatile last;

__attribute__((noinline)) void *keep(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  last = p;
  return p;
}

int main(void) {
  for (int i = 0; i < 1000; i++) keep(64);
  return 0;
}
