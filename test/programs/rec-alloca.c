// Stacks through frames of varying size (alloca) and varying recursion depth: every one of the
// 300 leaked blocks must unwind through alloca_frame, recurse and main.
#include <alloca.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *alloca_leaf(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

__attribute__((noinline)) void *alloca_frame(int i) {
  size_t sz = 16 + (size_t)(i * 40) % 700;
  char *buf = alloca(sz);
  memset(buf, i, sz);
  void *p = alloca_leaf(24);
  __asm__ volatile("" : : "r"(buf) : "memory");
  return p;
}

__attribute__((noinline)) void *recurse(int d, int i) {
  void *p = d > 0 ? recurse(d - 1, i) : alloca_frame(i);
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

int main(void) {
  for (int i = 0; i < 300; i++) recurse(i % 7, i);
  return 0;
}
