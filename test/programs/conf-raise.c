// Conformance: the program ends by the signal given as argv[1], sent to itself (raise): the
// recorder's crash handler must end it the same way (a SIGSEGV that was sent, not a fault,
// happens again only if it is sent again).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) static void *before_signal(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return sink = p;
}

int main(int argc, char **argv) {
  for (int i = 0; i < 10; i++) before_signal(64);
  printf("raising %s\n", argv[1]);
  fflush(stdout);
  raise(atoi(argv[1]));
  puts("still here");
  return 0;
}
