// How much of its caller's stack an allocation takes (bench/recorder.bench.ts): a thread paints
// 32 KiB below its frame, calls malloc and free, and counts how far down the paint was
// overwritten. Prints the first call (the recorder's first walk of the thread) and the deepest
// of 100 later ones.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define N 32768
void *volatile sink;
static volatile unsigned char *g_buf;

__attribute__((noinline)) static void paint(void) {
  volatile unsigned char buf[N];
  for (int i = 0; i < N; i++) buf[i] = 0xAA;
  g_buf = buf;
}

__attribute__((noinline)) static size_t scan(void) {
  size_t i = 0;
  while (i < N && g_buf[i] == 0xAA) i++;
  return N - i;
}

__attribute__((noinline)) static size_t measure(void) {
  paint();
  sink = malloc(40);
  free(sink);
  return scan();
}

static void *run(void *arg) {
  size_t first = measure(), later = 0;
  for (int i = 0; i < 100; i++) {
    size_t u = measure();
    if (u > later) later = u;
  }
  printf("rec-stackuse first=%zu later=%zu\n", first, later);
  return NULL;
}

int main(void) {
  sink = malloc(1);  // binds malloc and free before the measure
  free(sink);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 1 << 20);
  pthread_t t;
  pthread_create(&t, &a, run, NULL);
  pthread_join(t, NULL);
  return 0;
}
