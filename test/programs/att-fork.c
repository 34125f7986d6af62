/* att-fork: forks on request, and every new process allocates first thing after fork(), so a
 * tracer sees it only if the process is traced from its first instruction (attach: probes
 * inherited at fork). Built -O2 -fomit-frame-pointer like the other attach test programs.
 *
 *   att-fork
 * Prints "ready PID", then reads commands on stdin, one per line:
 *   fork N   forks N children; each creates a pool tagged "child" and a block in it at once,
 *            then forks one grandchild that does the same with the tag "grandchild", waits for
 *            it, and exits; the parent prints "forked CHILD GRANDCHILD" for each, once both
 *            have exited.
 *   make     the process itself creates a pool tagged "parent" (a call seen in the parent).
 * EOF ends it. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "att-mpool.h"

static volatile unsigned long sink;

NOINLINE void first_thing(const char *tag)
{
  mp_pool_t *p = mp_create(NULL, 1024);
  mp_tag(p, tag);
  sink += (unsigned long)mp_alloc(p, 100);
}

static void child(int report)
{
  first_thing("child");
  pid_t g = fork();
  if (g == 0) {
    first_thing("grandchild");
    _exit(0);
  }
  int st;
  if (g > 0) waitpid(g, &st, 0);
  /* the grandchild's pid goes to the parent through the exit pipe */
  if (write(report, &g, sizeof(g)) != sizeof(g)) _exit(1);
  _exit(0);
}

int main(void)
{
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof(line), stdin)) {
    int n;
    if (sscanf(line, "fork %d", &n) == 1) {
      for (int i = 0; i < n; i++) {
        int fds[2];
        if (pipe(fds)) return 1;
        pid_t c = fork();
        if (c == 0) { close(fds[0]); child(fds[1]); }
        close(fds[1]);
        pid_t g = -1;
        if (read(fds[0], &g, sizeof(g)) != sizeof(g)) g = -1;
        close(fds[0]);
        int st;
        waitpid(c, &st, 0);
        printf("forked %d %d\n", (int)c, (int)g);
        fflush(stdout);
      }
    } else if (strncmp(line, "make", 4) == 0) {
      first_thing("parent");
      printf("made\n");
      fflush(stdout);
    }
  }
  return 0;
}
