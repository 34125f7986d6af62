// A leak in a static function of a binary stripped after the build: no symbol can name it, so
// its frames must keep the file's own address (as addr2line and gdb take it), not the run's.
#include <stdlib.h>
#include <string.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
static __attribute__((noinline)) void *hidden_leak(size_t n) {
  char *p = malloc(n);
  memset(p, 7, n);
  return p;
}

void *volatile kept[9];  // the blocks escape: the compiler may not drop the allocations

int main(void) {
  for (int i = 0; i < 9; i++) kept[i] = hidden_leak(333);
  return 0;
}
