// Forks 100 times while three threads allocate and free: no fork may hang (the recorder holds
// its buffers and locks across fork) and every child is recorded. The amount is fixed, so the
// trace is the same size however fast the machine is: per fork round each thread makes
// PER_ROUND pairs of allocations (72 and 1032 bytes, sizes nothing else here uses), and the
// fork happens once every thread has started its round, i.e. while they allocate.
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3
#define ROUNDS 100
#define PER_ROUND 400

static volatile int round_no;      /* the round the threads may run (1..ROUNDS), 0 before */
static volatile int started[THREADS], done[THREADS];

static void *spin(void *arg) {
  int me = (int)(long)arg;
  for (int r = 1; r <= ROUNDS; r++) {
    while (round_no < r) sched_yield();
    for (int i = 0; i < PER_ROUND; i++) {
      void *p = malloc(72);
      void *q = malloc(1032);
      if (i == 0) __atomic_store_n(&started[me], r, __ATOMIC_RELEASE);
      free(p);
      free(q);
    }
    __atomic_store_n(&done[me], r, __ATOMIC_RELEASE);
  }
  return NULL;
}

__attribute__((noinline)) void *forked_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

static void wait_all(volatile int *what, int r) {
  for (int i = 0; i < THREADS; i++)
    while (__atomic_load_n(&what[i], __ATOMIC_ACQUIRE) < r) sched_yield();
}

int main(void) {
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, spin, (void *)i);
  for (int r = 1; r <= ROUNDS; r++) {
    round_no = r;
    wait_all(started, r);
    pid_t pid = fork();
    if (pid == 0) {
      forked_leak(48);
      _exit(0);
    }
    waitpid(pid, NULL, 0);
    wait_all(done, r);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  return 0;
}
