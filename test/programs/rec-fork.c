// The parent frees everything; its first forked child leaks 50 blocks of 128 bytes at
// child_leak() and exits with exit(7); the second leaks 5 blocks of 64 bytes at quick_leak() and
// leaves at once with _exit(9) (no exit handlers: the recorder must still write it out).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *quick_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

__attribute__((noinline)) void *child_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(void) {
  void *keep[20];
  for (int i = 0; i < 20; i++) keep[i] = malloc(256);  // inherited by the child, freed by the parent
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 50; i++) child_leak(128);
    exit(7);
  }
  int status = 0, status2 = 0;
  waitpid(pid, &status, 0);
  pid_t quick = fork();
  if (quick == 0) {
    for (int i = 0; i < 5; i++) quick_leak(64);
    _exit(9);
  }
  waitpid(quick, &status2, 0);
  for (int i = 0; i < 20; i++) free(keep[i]);
  return WIFEXITED(status) && WEXITSTATUS(status) == 7 && WIFEXITED(status2) && WEXITSTATUS(status2) == 9 ? 0 : 1;
}
