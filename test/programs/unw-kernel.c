/* Known kernel-side memory activity for the `leakscope kernel` tests. Prints its pid, waits
 * for a line on stdin (the tracer is ready), then:
 *   mmap 3 MiB anonymous (PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) in map_three(); munmap its first 1 MiB
 *   sbrk(+256 KiB)
 *   shmget 1 MiB, shmat, shmdt, shmctl(IPC_RMID)
 *   mremap the remaining 2 MiB to 4 MiB
 *   touches 64 MiB of a fresh mapping page by page over ~1 s (RSS rises)
 *   forks a child that mmaps 5 MiB and exits with 7
 * Each step prints "STEP name addr" on stdout; it then waits for another line and exits 3. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ul * 1024ul)

static void step(const char *name, void *addr) {
  printf("STEP %s %lu\n", name, (unsigned long)addr);
  fflush(stdout);
}

/* The 3 MiB mmap is made here, so that its stack reads mmap < map_three < main. */
__attribute__((noinline)) static char *map_three(void) {
  char *m = mmap(NULL, 3 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  __asm__ volatile("" ::: "memory");
  return m;
}

static void wait_line(void) {
  char buf[64];
  if (!fgets(buf, sizeof buf, stdin)) exit(1);
}

int main(void) {
  printf("%d\n", (int)getpid());
  fflush(stdout);
  wait_line();

  char *m = map_three();
  if (m == MAP_FAILED) return 1;
  step("mmap", m);
  if (munmap(m, MiB) != 0) return 1;
  step("munmap", m);

  void *before = sbrk(0);
  if (sbrk(256 * 1024) == (void *)-1) return 1;
  step("brk", (char *)before + 256 * 1024);

  int id = shmget(IPC_PRIVATE, MiB, IPC_CREAT | 0600);
  if (id < 0) return 1;
  step("shmget", (void *)(unsigned long)id);
  void *s = shmat(id, NULL, 0);
  if (s == (void *)-1) return 1;
  step("shmat", s);
  if (shmdt(s) != 0) return 1;
  step("shmdt", s);
  if (shmctl(id, IPC_RMID, NULL) != 0) return 1;
  step("shmrm", (void *)(unsigned long)id);

  char *r = mremap(m + MiB, 2 * MiB, 4 * MiB, MREMAP_MAYMOVE);
  if (r == MAP_FAILED) return 1;
  step("mremap", r);

  size_t big = 64 * MiB;
  char *t = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t == MAP_FAILED) return 1;
  step("touch-start", t);
  struct timespec ts = { 0, 15 * 1000 * 1000 };
  for (size_t off = 0; off < big; off += 4096) {
    t[off] = 1;
    if (off % (MiB) == 0) nanosleep(&ts, NULL); /* ~1 s for 64 MiB */
  }
  step("touch-end", t);

  pid_t child = fork();
  if (child == 0) {
    void *c = mmap(NULL, 5 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    _exit(c == MAP_FAILED ? 1 : 7);
  }
  int st;
  waitpid(child, &st, 0);
  step("child", (void *)(unsigned long)child);
  wait_line();
  return 3;
}
