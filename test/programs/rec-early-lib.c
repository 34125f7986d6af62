// Preloaded after the recorder (LD_PRELOAD="recorder this"), so the loader runs this
// constructor before the recorder's: it leaks 6 blocks of 555 bytes at early_leak() before the
// recorder has initialised (its hooks start it lazily, on this first malloc).
#include <stdlib.h>

__attribute__((noinline)) void *early_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

static void *keep[6];

__attribute__((constructor)) static void early_ctor(void) {
  for (int i = 0; i < 6; i++) keep[i] = early_leak(555);
}
