// One leak 100 calls deep (argv[1] overrides the depth): the recorded stack is cut at the
// depth limit (64 frames by default), keeping the frames nearest the allocation.
#include <stdlib.h>

__attribute__((noinline)) void *deep_leak(int depth) {
  if (depth > 0) {
    void *p = deep_leak(depth - 1);
    __asm__ volatile("" : : "r"(p) : "memory");  // not a tail call: every level keeps a frame
    return p;
  }
  char *p = malloc(777);
  *(volatile char *)p = 1;
  return p;
}

int main(int argc, char **argv) {
  return deep_leak(argc > 1 ? atoi(argv[1]) : 100) ? 0 : 1;
}
