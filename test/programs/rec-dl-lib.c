// A plugin that leaks: loaded with dlopen by rec-dlopen.c.
#include <stdlib.h>

// Writes to the block so the call to malloc is not a tail call (the site keeps its frame).
__attribute__((noinline)) void *plugin_leak(size_t n) {
  char *p = malloc(n);
  *(volatile char *)p = 0;
  return p;
}

void plugin_run(int times) {
  for (int i = 0; i < times; i++) plugin_leak(200);
}
