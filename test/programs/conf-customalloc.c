// Conformance: a program with its own malloc family (a bump allocator over a static arena), so
// nothing it or libc allocates reaches the allocator the recorder interposes.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static _Alignas(64) unsigned char arena[8 << 20];
static size_t used;

void *malloc(size_t n) {
  size_t need = (n + 31) & ~(size_t)15;
  if (used + need > sizeof arena) { errno = ENOMEM; return NULL; }
  unsigned char *p = arena + used + 16;
  memcpy(p - 16, &n, sizeof n);
  used += need;
  return p;
}
void free(void *p) { (void)p; }
void *calloc(size_t n, size_t size) { void *p = malloc(n * size); if (p) memset(p, 0, n * size); return p; }
void *realloc(void *old, size_t n) {
  void *p = malloc(n);
  if (p && old) { size_t had; memcpy(&had, (unsigned char *)old - 16, sizeof had); memcpy(p, old, had < n ? had : n); }
  return p;
}

int main(void) {
  char *s = NULL;
  for (int i = 0; i < 100; i++) {
    s = realloc(s, 16 + i);
    s[i] = 'a' + i % 26;
  }
  printf("own arena in use: %s\n", used ? "yes" : "no");
  return 0;
}
