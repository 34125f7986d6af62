// Malloc-heavy benchmark for the recorder: THREADS threads each run ITERS rounds of free + malloc
// (random sizes 16..511, a live set of 1024 blocks per thread) from call stacks DEPTH..DEPTH+3
// deep. Prints its own figures: allocation calls, process CPU time and wall time of the work.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long iters = 1000000;
static int depth = 10;

__attribute__((noinline)) static void *alloc_at(int d, size_t n) {
  if (d <= 0) return malloc(n);
  void *p = alloc_at(d - 1, n);
  __asm__ volatile("" : : "r"(p) : "memory");  // not a tail call: every level keeps its frame
  return p;
}

static void *worker(void *arg) {
  unsigned rng = (unsigned)(unsigned long)arg * 2654435761u + 1;
  void *slots[1024] = {0};
  for (long i = 0; i < iters; i++) {
    rng = rng * 1103515245u + 12345u;
    int j = (int)(i & 1023);
    free(slots[j]);
    slots[j] = alloc_at(depth + (int)(i & 3), 16 + (rng >> 16) % 496);
  }
  for (int j = 0; j < 1024; j++) free(slots[j]);
  return NULL;
}

static unsigned long long ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2) iters = atol(argv[2]);
  if (argc > 3) depth = atoi(argv[3]);
  unsigned long long c0 = ns(CLOCK_PROCESS_CPUTIME_ID), w0 = ns(CLOCK_MONOTONIC);
  pthread_t th[64];
  for (int i = 0; i < threads && i < 64; i++) pthread_create(&th[i], NULL, worker, (void *)(long)(i + 1));
  for (int i = 0; i < threads && i < 64; i++) pthread_join(th[i], NULL);
  unsigned long long c1 = ns(CLOCK_PROCESS_CPUTIME_ID), w1 = ns(CLOCK_MONOTONIC);
  fprintf(stderr, "rec-bench calls=%llu cpu_ns=%llu wall_ns=%llu\n",
          (unsigned long long)threads * (unsigned long long)(iters + 1024) * 2ull, c1 - c0, w1 - w0);
  return 0;
}
