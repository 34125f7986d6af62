/* agent-mleak: a process that leaks through malloc, for the agent's aggregate-mode test
 * (test/agent). Every 10 ms it keeps a 1000-byte block from keep_block() (never freed: the leak)
 * and makes and frees a few blocks in churn_block() (no leak). Prints "ready" once running;
 * SIGTERM ends it. Built -O2 -fomit-frame-pointer like a distribution binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))

static void *kept[1 << 16];
static unsigned nkept;
static volatile unsigned long sink;

NOINLINE void keep_block(void)
{
  char *p = malloc(1000);
  if (!p) exit(1);
  memset(p, 1, 1000);
  kept[nkept++ & 0xffff] = p;
}

NOINLINE void churn_block(void)
{
  for (int i = 0; i < 4; i++) {
    char *p = malloc(200 + i * 64);
    if (!p) exit(1);
    p[0] = (char)i;
    sink += (unsigned long)p[0];
    free(p);
  }
}

int main(void)
{
  struct timespec tick = { 0, 10 * 1000 * 1000 };
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    keep_block();
    churn_block();
    nanosleep(&tick, NULL);
  }
}
