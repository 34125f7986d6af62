/* mmap/munmap in a loop, for the kernel-side overhead bench: waits for a line on stdin, then
 * maps and unmaps 64 KiB N times (argv[1]) from a few frames deep and prints ns per iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static void *map_one(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) static int loop(long n) {
  for (long i = 0; i < n; i++) {
    void *p = map_one(65536);
    if (p == MAP_FAILED || munmap(p, 65536) != 0) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  printf("%d\n", (int)getpid());
  fflush(stdout);
  char buf[16];
  if (!fgets(buf, sizeof buf, stdin)) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  if (loop(n)) return 1;
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
  return 0;
}
