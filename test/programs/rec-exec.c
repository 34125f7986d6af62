// The first image leaks at before_exec(), signals itself SIGUSR2 (a marker, under the recorder)
// and execs itself with "again" at once; the new image leaks at after_exec().
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *before_exec(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}
// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *after_exec(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "again") == 0) {
    for (int i = 0; i < 5; i++) after_exec(300);
    return 0;
  }
  for (int i = 0; i < 4; i++) before_exec(700);
  // Only under the recorder (its SIGUSR2 handler is hidden from sigaction: ask the environment).
  if (getenv("LEAKSCOPE_TRACE")) raise(SIGUSR2);
  char *args[] = {argv[0], "again", NULL};
  execv("/proc/self/exe", args);
  return 1;
}
