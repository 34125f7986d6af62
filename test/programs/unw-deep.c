/* A known call chain for the unwinder tests, built -O2 -fomit-frame-pointer like Debian's
 * packages. Every iteration walks
 *   main -> run_forever -> level_one -> level_two (alloca: an rbp-based frame) ->
 *   recurse x4 -> qsort (libc) -> compare -> unw_leaf
 * and then sleeps, so a tracer can catch it either at unw_leaf (breakpoint) or inside
 * nanosleep (blocked in the kernel). Prints its pid, then runs until killed. */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

__attribute__((noinline)) unsigned long unw_leaf(unsigned long x) {
  sink += x;
  __asm__ volatile("" ::: "memory");
  return sink * 3;
}

__attribute__((noinline)) static int compare(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  sink += unw_leaf((unsigned long)(x ^ y));
  return (x > y) - (x < y);
}

__attribute__((noinline)) static unsigned long recurse(int depth, int *arr, int n) {
  if (depth == 0) {
    qsort(arr, (size_t)n, sizeof *arr, compare);
    return (unsigned long)arr[0];
  }
  unsigned long r = recurse(depth - 1, arr, n);
  __asm__ volatile("" ::: "memory");
  return r + (unsigned long)depth;
}

__attribute__((noinline)) static unsigned long level_two(int n) {
  int *arr = alloca((size_t)n * sizeof *arr); /* variable frame: CFA from rbp */
  for (int i = 0; i < n; i++) arr[i] = (n - i) * 7 % 5;
  unsigned long r = recurse(4, arr, n);
  __asm__ volatile("" ::: "memory");
  return r + (unsigned long)arr[n - 1];
}

__attribute__((noinline)) static unsigned long level_one(int n) {
  unsigned long r = level_two(n + 1);
  __asm__ volatile("" ::: "memory");
  return r * 2;
}

__attribute__((noinline)) static void run_forever(int n) {
  struct timespec ts = { 0, 20 * 1000 * 1000 };
  for (;;) {
    sink += level_one(n);
    nanosleep(&ts, NULL);
  }
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 3;
  printf("%d\n", (int)getpid());
  fflush(stdout);
  run_forever(n);
  return 0;
}
