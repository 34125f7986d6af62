// Loaded by conf-dlclose.c: allocates from its own code, and runs the program's callbacks from
// one call site, so the same return address into this library is on the stack while the
// program allocates and later while it exits (as httpd's MPM module calls exit()).
#include <stdlib.h>
#include <string.h>

void *volatile dl_lib_sink;

__attribute__((noinline)) void *dl_lib_leak(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return dl_lib_sink = p;
}

__attribute__((noinline)) int dl_lib_run(int (*cb)(int), int arg) {
  dl_lib_leak(10);
  return cb(arg) + 1;
}
