/* att-pool: a program with its own pool allocator (tests the user-profile path of
 * `leakscope attach`; profiles/allocators described in docs/allocator-profiles.md).
 *
 *   att-pool ITERATIONS SLEEP_MS LEAK_EVERY [go]
 * Each iteration creates a request pool (child of a long-lived server pool), tags it,
 * allocates from it and destroys it; every LEAK_EVERY-th iteration leaky_handler() forgets to
 * destroy its pool, and leaky_malloc() forgets a 100-byte malloc, and the program prints
 * "leaked N". Prints "ready" once set up; with "go" it then waits for a line on stdin before the
 * first iteration, so a test starts it once its tracer is live (no sleep to guess how long an
 * attach takes). 200 blocks malloc'd at start are freed one per iteration from iteration 100 on:
 * frees of blocks allocated before a tracer attached ("unknown free", never a leak).
 * Built -O2 -fomit-frame-pointer like a distribution binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "att-mpool.h"

static mp_pool_t *server_pool;
static volatile unsigned long sink;

NOINLINE void good_handler(int i)
{
  mp_pool_t *r = mp_create(server_pool, 1024);
  mp_tag(r, "request");
  for (int k = 0; k < 8; k++) sink += (unsigned long)mp_alloc(r, 200 + k * 100);
  mp_destroy(r);
}

NOINLINE void leaky_handler(int i)
{
  mp_pool_t *r = mp_create(server_pool, 2048);
  mp_tag(r, "leaky");
  for (int k = 0; k < 4; k++) sink += (unsigned long)mp_alloc(r, 300);
  /* forgot mp_destroy(r) */
}

NOINLINE void leaky_malloc(int i)
{
  char *p = malloc(100);
  if (!p) abort();
  memset(p, i, 100);
  sink += (unsigned long)p;
}

NOINLINE void balanced_malloc(int i)
{
  char *p = malloc(300);
  if (!p) abort();
  memset(p, i, 300);
  sink += (unsigned long)p[5];
  free(p);
}

int main(int argc, char **argv)
{
  long iters = argc > 1 ? atol(argv[1]) : 100;
  long sleep_ms = argc > 2 ? atol(argv[2]) : 10;
  long leak_every = argc > 3 ? atol(argv[3]) : 10;
  if (leak_every < 1) leak_every = 1;
  int wait_go = argc > 4 && strcmp(argv[4], "go") == 0;
  static char *early[200];
  for (int k = 0; k < 200; k++) early[k] = malloc(64);
  int early_left = 200;
  long leaked = 0;
  server_pool = mp_create(NULL, 8192);
  mp_tag(server_pool, "server");
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  if (wait_go) {
    char line[64];
    if (!fgets(line, sizeof(line), stdin)) return 1;
  }
  for (long i = 0; iters < 0 || i < iters; i++) {
    good_handler(i);
    balanced_malloc(i);
    if (i % leak_every == leak_every - 1) {
      leaky_handler(i);
      leaky_malloc(i);
      printf("leaked %ld\n", ++leaked);
      fflush(stdout);
    }
    if (early_left > 0 && i >= 100) free(early[--early_left]);
    if (sleep_ms > 0) { struct timespec ts = { sleep_ms / 1000, (sleep_ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }
  }
  printf("done\n");
  fflush(stdout);
  return 0;
}
