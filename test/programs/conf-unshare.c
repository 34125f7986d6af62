// Conformance: namespace calls that need a single-threaded process (sandboxes do this):
// unshare(CLONE_NEWUSER) twice, setns() into our own mount namespace, and allocations between
// and after them. Prints each call's result.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Kept in a global, so the compiler cannot drop the allocations as unused.
void *volatile sink;

static const char *res(int rc) { return rc == 0 ? "ok" : strerror(errno); }

__attribute__((noinline)) static void *ns_leak(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return sink = p;
}

int main(void) {
  ns_leak(111);
  int mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  printf("setns mnt: %s\n", res(setns(mnt, CLONE_NEWNS)));
  ns_leak(222);
  printf("unshare user: %s\n", res(unshare(CLONE_NEWUSER)));
  ns_leak(333);
  printf("unshare user again: %s\n", res(unshare(CLONE_NEWUSER)));
  ns_leak(444);
  fflush(stdout);
  return 0;
}
