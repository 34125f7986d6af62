// Forks 100 times while three threads allocate and free without pause: no fork may hang (the
// recorder holds its buffers and locks across fork) and every child is recorded.
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *spin(void *arg) {
  while (!stop) {
    void *p = malloc(64);
    void *q = malloc(1000);
    free(p);
    free(q);
  }
  return NULL;
}

__attribute__((noinline)) void *forked_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

int main(void) {
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, spin, NULL);
  for (int i = 0; i < 100; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      forked_leak(48);
      _exit(0);
    }
    waitpid(pid, NULL, 0);
  }
  stop = 1;
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  return 0;
}
