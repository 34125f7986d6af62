// Conformance: a library whose code allocated is dlclose()d, by an exit handler, while exit()
// was called from one of the library's own frames (httpd: its MPM module calls exit(), and
// apr_pool_terminate unloads the modules then keeps destroying pools). Exit handlers that run
// after the unload allocate through fresh call paths, one with a variable-length frame.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Kept in a global, so the compiler cannot drop the allocations as unused.
void *volatile sink;

static void *lib;
static const char *lib_path;

__attribute__((noinline)) static void late_alloc(int n) {
  volatile char vla[16 + n];  // a frame whose size changes: its callers need the full unwinder
  vla[0] = 1;
  void *p = malloc(64 + n + vla[0]);
  memset(p, 1, 64);
  sink = p;
  free(p);
}

static void after_unload(void) {
  for (int i = 0; i < 20; i++) late_alloc(i);
  char *s = strdup("after the unload");
  sink = s;
  free(s);
  puts("exit handlers done");
}

static void unload(void) {
  printf("dlclose: %d\n", dlclose(lib));
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int mapped = 0;
  while (f && fgets(line, sizeof line, f)) mapped |= strstr(line, lib_path) != NULL;
  if (f) fclose(f);
  printf("library still mapped: %s\n", mapped ? "yes" : "no");
}

// Called back from the library: allocates (its stacks pass through the library's frame).
__attribute__((noinline)) static int work(int i) {
  void *p = malloc(32 + i);
  memset(p, 1, 32);
  sink = p;
  free(p);
  late_alloc(i % 7);
  return i;
}

// Called back from the library: ends the process from under the library's frame.
__attribute__((noinline)) static int leave(int code) { exit(code); }

int main(int argc, char **argv) {
  lib_path = argv[1];
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) { printf("%s\n", dlerror()); return 2; }
  void *(*leak)(size_t) = (void *(*)(size_t))dlsym(lib, "dl_lib_leak");
  int (*lib_run)(int (*)(int), int) = (int (*)(int (*)(int), int))dlsym(lib, "dl_lib_run");
  for (int i = 0; i < 5; i++) leak(300);
  int r = 0;
  for (int i = 0; i < 50; i++) r += lib_run(work, i);
  printf("work: %d\n", r);
  atexit(after_unload);  // runs second
  atexit(unload);        // runs first
  fflush(stdout);
  lib_run(leave, 6);
  return 0;
}
