// Anonymous mappings as leak sites: grow_mapping maps 3 pages 24 times; 12 are unmapped whole,
// 12 lose their last page (a partial unmap from the end): 12 x 2 pages stay mapped. A hole
// punched in one more mapping of keep_mapping (pages 1..2 of 4) leaves 2 pages in two ranges.
// A file mapping is no allocation; the heap block from grow_mapping's caller is a heap site.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

__attribute__((noinline)) char *grow_mapping(size_t pages) {
  char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  for (size_t i = 0; i < pages; i++) p[i * PAGE] = 1;
  return p;
}

__attribute__((noinline)) char *keep_mapping(void) {
  char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

int main(void) {
  static volatile char *sink;
  for (int i = 0; i < 24; i++) {
    char *p = grow_mapping(3);
    if (!p) return 2;
    if (i % 2 == 0) {
      if (munmap(p, 3 * PAGE) != 0) return 3;
    } else if (munmap(p + 2 * PAGE, PAGE) != 0) {
      return 4;
    }
    usleep(1000);
  }
  char *k = keep_mapping();
  if (!k || munmap(k + PAGE, 2 * PAGE) != 0) return 5;
  int fd = open("/proc/self/exe", O_RDONLY);
  void *file = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) return 6;
  close(fd);
  sink = malloc(777);
  return sink ? 0 : 7;
}
