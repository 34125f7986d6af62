// Loads the plugin given as argv[1] and lets it leak 30 blocks of 200 bytes.
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { fprintf(stderr, "%s\n", dlerror()); return 2; }
  void (*run)(int) = (void (*)(int))dlsym(h, "plugin_run");
  run(30);
  return 0;
}
