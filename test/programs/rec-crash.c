// Leaks 100 blocks of 512 bytes at before_crash(), then dies: "segv" (null write), or "kill"
// (SIGKILL after 1.5 s: only the recorder's timer can have written the data).
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *before_crash(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(int argc, char **argv) {
  for (int i = 0; i < 100; i++) before_crash(512);
  if (argc > 1 && strcmp(argv[1], "kill") == 0) {
    usleep(1500000);
    raise(SIGKILL);
  }
  volatile int *p = NULL;
  *p = 1;
  return 0;
}
