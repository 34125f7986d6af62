// Conformance: threads on the smallest stacks allowed allocate, as servers' helper threads do.
// One thread on PTHREAD_STACK_MIN calls malloc at once; another first uses its stack until
// about 3 KiB are left; a third runs on a stack the program gave (pthread_attr_setstack).
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *leaked[3];
void *volatile sink;

static void *at_once(void *arg) {
  void *p = malloc(32);
  memset(p, 1, 32);
  leaked[0] = p;
  sink = malloc(100);
  free(sink);
  return NULL;
}

// Recurses until less than `left` bytes of the thread's stack remain, then allocates.
static uintptr_t g_lo;
__attribute__((noinline)) static int deep(int n, size_t left) {
  volatile char pad[256];
  pad[0] = (char)n;
  if ((uintptr_t)pad - g_lo > left) return deep(n + 1, left) + pad[0];
  void *p = malloc(48);
  memset(p, 2, 48);
  leaked[1] = p;
  sink = calloc(4, 8);
  free(sink);
  return n;
}

static void *nearly_full(void *arg) {
  pthread_attr_t a;
  pthread_getattr_np(pthread_self(), &a);
  void *addr;
  size_t size;
  pthread_attr_getstack(&a, &addr, &size);
  pthread_attr_destroy(&a);
  g_lo = (uintptr_t)addr;
  return (void *)(intptr_t)(deep(0, 2048) > 0);
}

static void *own_stack(void *arg) {
  void *p = realloc(NULL, 64);
  memset(p, 3, 64);
  leaked[2] = p;
  return NULL;
}

int main(void) {
  // Binds malloc, calloc and free now: the loader's lazy binding needs ~2 KiB of stack itself.
  sink = calloc(1, 1);
  free(sink);
  sink = malloc(1);
  free(sink);
  pthread_attr_t a;
  pthread_t t;
  void *r;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, PTHREAD_STACK_MIN);
  if (pthread_create(&t, &a, at_once, NULL) != 0) { puts("create failed"); return 1; }
  pthread_join(t, NULL);
  if (pthread_create(&t, &a, nearly_full, NULL) != 0) { puts("create failed"); return 1; }
  pthread_join(t, &r);
  printf("deep thread recursed: %s\n", r ? "yes" : "no");
  pthread_attr_destroy(&a);
  size_t sz = PTHREAD_STACK_MIN + 4096;
  void *stack = aligned_alloc(4096, sz);
  pthread_attr_init(&a);
  pthread_attr_setstack(&a, stack, sz);
  if (pthread_create(&t, &a, own_stack, NULL) != 0) { puts("create failed"); return 1; }
  pthread_join(t, NULL);
  pthread_attr_destroy(&a);
  printf("blocks: %d %d %d\n", ((char *)leaked[0])[5], ((char *)leaked[1])[5], ((char *)leaked[2])[5]);
  return 0;
}
