// Conformance: vfork children that leave with _exit and that exec, then the parent goes on
// allocating (the child shares the parent's memory until then).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// Kept in a global, so the compiler cannot drop the allocations as unused.
void *volatile sink;

__attribute__((noinline)) static void *after_vfork(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return sink = p;
}

int main(void) {
  fflush(stdout);
  pid_t c = vfork();
  if (c == 0) _exit(3);
  int st;
  waitpid(c, &st, 0);
  printf("first child: exit %d\n", WEXITSTATUS(st));
  after_vfork(100);
  fflush(stdout);
  c = vfork();
  if (c == 0) {
    char *argv[] = {"sh", "-c", "echo child says $0", "hello", NULL};
    execv("/bin/sh", argv);
    _exit(127);
  }
  waitpid(c, &st, 0);
  printf("second child: exit %d\n", WEXITSTATUS(st));
  for (int i = 0; i < 5; i++) after_vfork(200);
  return 0;
}
