// Conformance: clone() without CLONE_THREAD: a new process (no shared memory) and one that
// shares the parent's memory while the parent waits (CLONE_VM | CLONE_VFORK).
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// Kept in a global, so the compiler cannot drop the allocations as unused.
void *volatile sink;

__attribute__((noinline)) static void *clone_leak(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return sink = p;
}

static int child_copy(void *arg) {
  for (int i = 0; i < 10; i++) clone_leak(96);
  printf("copy child: %s\n", (char *)arg);
  fflush(stdout);
  return 4;
}

static int child_shared(void *arg) {
  void *p = malloc(500);
  sink = p;
  free(p);
  *(int *)arg = 42;
  return 5;
}

int main(void) {
  size_t sz = 256 * 1024;
  char *stack = malloc(sz);
  fflush(stdout);
  pid_t c = clone(child_copy, stack + sz, SIGCHLD, "hello");
  int st;
  waitpid(c, &st, 0);
  printf("copy child: exit %d\n", WEXITSTATUS(st));
  int shared = 0;
  c = clone(child_shared, stack + sz, CLONE_VM | CLONE_VFORK | SIGCHLD, &shared);
  waitpid(c, &st, 0);
  printf("shared child: exit %d, wrote %d\n", WEXITSTATUS(st), shared);
  for (int i = 0; i < 3; i++) clone_leak(64);
  free(stack);
  return 0;
}
