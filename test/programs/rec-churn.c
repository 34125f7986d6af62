// Churns the heap until SIGTERM: bursts of 50 malloc/free pairs from one site, one block in
// 1000 kept (never freed), a millisecond's pause between bursts (the recorder writes chunks all
// along). Prints "churn pid N" on stderr after its first burst, and its counts when it ends
// normally. Its first allocation comes before the line and its last after the SIGTERM, so a test
// knows the program allocated before and after anything it did between the two (on a loaded
// machine the program may not run at all between two bursts' worth of the test's steps).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

__attribute__((noinline)) void *churn_block(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(void) {
  signal(SIGTERM, on_term);
  unsigned long allocs = 0, kept = 0;
  for (int burst = 0; !stop; burst++) {
    for (int i = 0; i < 50; i++, allocs++) {
      void *p = churn_block(64 + allocs % 128);
      if (allocs % 1000 == 0) kept++;
      else free(p);
    }
    if (burst == 0) fprintf(stderr, "churn pid %d\n", (int)getpid());
    usleep(1000);
  }
  free(churn_block(64)); // after the stop: one allocation later than the signal
  allocs++;
  fprintf(stderr, "churn allocs=%lu kept=%lu\n", allocs, kept);
  return 0;
}
