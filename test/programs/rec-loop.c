// A leak in a loop at a known site, beside balanced churn. Args: [leaks] [size].
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *leak_here(size_t n) {
  void *p = malloc(n);
  memset(p, 0xab, n);
  return p;
}

__attribute__((noinline)) void churn(int rounds) {
  for (int i = 0; i < rounds; i++) {
    volatile char *p = malloc(32 + (i % 64));
    p[0] = 1;
    free((void *)p);
  }
}

int main(int argc, char **argv) {
  int leaks = argc > 1 ? atoi(argv[1]) : 200;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 48;
  for (int i = 0; i < leaks; i++) {
    leak_here(size);
    churn(10);
  }
  return 0;
}
