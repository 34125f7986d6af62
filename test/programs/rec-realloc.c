// A realloc chain that is kept (leaked) and one that is freed.
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) char *grow_buffer(char *p, size_t n) {
  char *q = realloc(p, n);
  memset(q, 1, n);
  return q;
}

int main(void) {
  char *kept = NULL, *tmp = NULL;
  for (size_t n = 16; n <= 4096; n *= 2) kept = grow_buffer(kept, n);
  for (size_t n = 16; n <= 8192; n *= 2) tmp = grow_buffer(tmp, n);
  free(tmp);
  void *r = reallocarray(NULL, 10, 100);  // 1000 bytes, freed through realloc(p, 0)
  r = realloc(r, 0);
  (void)r;
  return kept[0] == 1 ? 0 : 1;
}
