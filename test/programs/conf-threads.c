// Conformance: 1,000 threads alive at once (they wait for each other), each allocating, one
// block of each kept.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000
static pthread_barrier_t all_up;
static void *kept[N];

static void *worker(void *arg) {
  long i = (long)arg;
  pthread_barrier_wait(&all_up);
  for (int k = 0; k < 10; k++) {
    /* the thread's own pointer: one shared by all threads (as this program had) let two threads
     * free the same block, which then came back from malloc twice, to two kept[] slots */
    void *volatile p = malloc(16 + k);
    free(p);
  }
  kept[i] = malloc(24);
  memset(kept[i], (int)(i & 0x7f), 24);
  return NULL;
}

int main(void) {
  pthread_t t[N];
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 256 * 1024);
  pthread_barrier_init(&all_up, NULL, N);
  int made = 0;
  for (long i = 0; i < N; i++) made += pthread_create(&t[i], &a, worker, (void *)i) == 0;
  for (int i = 0; i < made; i++) pthread_join(t[i], NULL);
  long sum = 0;
  for (int i = 0; i < N; i++) sum += kept[i] ? ((char *)kept[i])[1] : -1;
  printf("threads %d sum %ld\n", made, sum);
  return 0;
}
