// Every allocation function the recorder intercepts, each at its own site with its own size:
// one block of each is kept (leaked), a second of each is freed. Anonymous mmap: 3 pages kept,
// 5 pages unmapped; a file mapping is not an allocation.
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

// Each site writes to its block so the call is not a tail call (the site keeps its frame).
#define SITE(name, expr)                          \
  __attribute__((noinline)) void *name(void) {    \
    char *p = (expr);                             \
    *(volatile char *)p = 1;                      \
    return p;                                     \
  }

SITE(via_malloc, malloc(1001))
SITE(via_calloc, calloc(7, 143))  /* 1001 */
SITE(via_realloc, realloc(NULL, 1002))
SITE(via_reallocarray, reallocarray(NULL, 3, 401))  /* 1203 */
SITE(via_aligned_alloc, aligned_alloc(64, 1024 + 64))
SITE(via_memalign, memalign(128, 1005))
SITE(via_valloc, valloc(1006))
SITE(via_pvalloc, pvalloc(1007))  /* recorded as requested: 1007 */

__attribute__((noinline)) void *via_posix_memalign(void) {
  void *p = NULL;
  if (posix_memalign(&p, 256, 1008) != 0) return NULL;
  *(volatile char *)p = 1;
  return p;
}

__attribute__((noinline)) void *via_mmap(size_t pages) {
  char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  *(volatile char *)p = 1;
  return p;
}

static void *(*const sites[])(void) = {
  via_malloc, via_calloc, via_realloc, via_reallocarray, via_aligned_alloc,
  via_memalign, via_valloc, via_pvalloc, via_posix_memalign,
};

int main(void) {
  int n = (int)(sizeof sites / sizeof sites[0]);
  for (int i = 0; i < n; i++) {
    void *kept = sites[i]();
    void *freed = sites[i]();
    if (!kept || !freed) return 2;
    free(freed);
  }
  void *kept = via_mmap(3);
  void *gone = via_mmap(5);
  if (!kept || !gone || munmap(gone, 5 * 4096) != 0) return 3;
  int fd = open("/proc/self/exe", O_RDONLY);
  void *file = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) return 4;
  munmap(file, 4096);
  close(fd);
  return 0;
}
