// Four threads each leak 100 blocks of 64 bytes at thread_leak() and churn.
#include <pthread.h>
#include <stdlib.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *thread_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

static void *worker(void *arg) {
  for (int i = 0; i < 100; i++) {
    thread_leak(64);
    for (int k = 0; k < 50; k++) {
      volatile char *p = malloc(100);
      p[0] = 0;
      free((void *)p);
    }
  }
  return NULL;
}

int main(void) {
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, worker, NULL);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  return 0;
}
