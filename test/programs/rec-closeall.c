// A daemon-style program that closes every descriptor it did not open, then leaks 7 blocks of
// 333 bytes at after_close(): the recording must survive.
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) void *after_close(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(void) {
  for (int fd = 3; fd < 4096; fd++) close(fd);
  closefrom(3);
  for (int i = 0; i < 7; i++) after_close(333);
  return 0;
}
