// The allocation site is inlined into its caller: symbolization must show both, the inlined
// function first (marked inlined), then the function it was inlined into.
#include <stdlib.h>

static inline __attribute__((always_inline)) void *inlined_leaf(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 1;
  return p;
}

__attribute__((noinline)) void *outer_caller(size_t n) {
  void *p = inlined_leaf(n);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

int main(void) {
  for (int i = 0; i < 25; i++) outer_caller(64);
  return 0;
}
