// Allocations before main: a constructor leaks 10 blocks of 1000 bytes at ctor_leak().
#include <stdlib.h>

static void *saved[10];
// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *ctor_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

__attribute__((constructor)) static void early(void) {
  for (int i = 0; i < 10; i++) saved[i] = ctor_leak(1000);
}

int main(void) { return saved[9] ? 0 : 1; }
