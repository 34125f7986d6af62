// Leaks 40 blocks of 1024 bytes at waiting_leak(), says "ready" and waits to be killed.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *waiting_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(void) {
  for (int i = 0; i < 40; i++) waiting_leak(1024);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
