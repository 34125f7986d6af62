// Run inside a memory cgroup with a limit: `memcg-hog FILE MIB`. Prints "ready", waits for "go"
// on stdin, reads FILE twice (its page cache is charged to the cgroup: past the limit the
// kernel reclaims it, a memcg reclaim stall), prints "STEP read", then touches MIB MiB of
// anonymous memory: with no swap, reclaim cannot make room and the cgroup's OOM killer ends it.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  printf("ready\n");
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 2;
  static char buf[1 << 20];
  for (int pass = 0; pass < 2; pass++) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 3;
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
  }
  printf("STEP read\n");
  fflush(stdout);
  long mib = atol(argv[2]);
  for (long i = 0; i < mib; i++) {
    char *p = malloc(1 << 20);
    if (!p) return 4;
    memset(p, 1, 1 << 20);
  }
  printf("STEP anon\n");
  fflush(stdout);
  return 0;
}
