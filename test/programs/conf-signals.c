// Conformance: what the program sees of its signals. The disposition of every signal at start
// (it must be as the program was started: the recorder's handlers are invisible), a handler on
// an alternate stack that allocates, a SIGSEGV handler that siglongjmps out of a fault, its own
// SIGUSR2 handler, and the end: killed by the default action of SIGTERM.
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile sink;
static char altstack[64 * 1024];
static volatile int on_alt, usr2_count;
static sigjmp_buf probe_env;

static void on_usr1(int sig) {
  char here;
  on_alt = (uintptr_t)&here >= (uintptr_t)altstack && (uintptr_t)&here < (uintptr_t)altstack + sizeof altstack;
  void *p = malloc(77);  // raised synchronously below, never inside malloc
  memset(p, 7, 77);
  sink = p;
  free(p);
}

static void on_segv(int sig) { siglongjmp(probe_env, 1); }
static void on_usr2(int sig) { usr2_count++; }

int main(void) {
  // 1. What every signal's disposition looks like at start, through sigaction and signal().
  for (int s = 1; s < NSIG; s++) {
    struct sigaction old;
    if (sigaction(s, NULL, &old) != 0) continue;
    const char *what = old.sa_handler == SIG_DFL ? "default" : old.sa_handler == SIG_IGN ? "ignored" : "handler";
    if (old.sa_handler != SIG_DFL) printf("signal %d at start: %s\n", s, what);
  }
  void (*prev)(int) = signal(SIGINT, SIG_DFL);
  printf("signal(SIGINT) was %s\n", prev == SIG_DFL ? "default" : prev == SIG_IGN ? "ignored" : "a handler");
  struct sigaction q;
  sigaction(SIGTERM, NULL, &q);
  printf("SIGTERM flags %#x\n", (unsigned)q.sa_flags);

  // 2. A handler on an alternate stack that allocates.
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  printf("usr1 handler ran on the alternate stack: %s\n", on_alt ? "yes" : "no");

  // 3. A fault caught and left with siglongjmp, then the program allocates on.
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  int faults = 0;
  for (int i = 0; i < 3; i++) {
    if (sigsetjmp(probe_env, 1) == 0) *(volatile int *)(uintptr_t)16 = 1;
    else faults++;
    sink = malloc(40 + i);
    free(sink);
  }
  printf("faults caught: %d\n", faults);

  // 4. Its own SIGUSR2 handler, and the old disposition it reports.
  struct sigaction old2;
  sa.sa_handler = on_usr2;
  sa.sa_flags = 0;
  sigaction(SIGUSR2, &sa, &old2);
  printf("SIGUSR2 was %s\n", old2.sa_handler == SIG_DFL ? "default" : "not default");
  raise(SIGUSR2);
  raise(SIGUSR2);
  printf("usr2 count: %d\n", usr2_count);

  // 5. Put SIGINT back and ask again.
  signal(SIGINT, SIG_DFL);
  sigaction(SIGINT, NULL, &q);
  printf("SIGINT now %s\n", q.sa_handler == SIG_DFL ? "default" : "not default");
  fflush(stdout);
  raise(SIGTERM);
  puts("not reached");
  return 0;
}
