/* Test and measurement driver for ls_unwind: takes registers and a stack slice from a live,
 * stopped process (as a BPF probe would copy them) and prints the unwound stack.
 *
 *   ls-unwind-test mem PID IP SP BP [--len N] [--repeat N]  process already stopped (gdb)
 *   ls-unwind-test ptrace PID [--len N] [--repeat N]        stops it briefly itself
 *   ls-unwind-test fuzz PID N SEED                          N unwinds of garbage: pcs inside
 *     and outside the process's code, random stack bytes mixed with real code addresses; prints
 *     `fuzz N unwinds, max F frames, us_per_unwind X` (must not crash, hang or overflow)
 *
 * Output, one frame a line: PC MODULE-PATH ELF-VADDR SYMBOL (ELF-VADDR is what addr2line
 * takes; for frames after the first it is the return address). With --repeat N, the warm
 * cost per unwind is printed on stderr as `us_per_unwind X cold_us Y`; --fresh drops the
 * per-pid cache before each repetition (what a Dwfl per sample, as perf does, costs). */
#define _GNU_SOURCE
#include "unwind.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *msg) {
  fprintf(stderr, "ls-unwind-test: %s\n", msg);
  exit(2);
}

static uint64_t num(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || end == s) die("bad number");
  return v;
}

/* Reads up to len bytes at addr, page by page, stopping at the first unreadable page (the end
 * of the stack mapping): the same bytes a BPF probe could copy. */
static size_t read_stack(int pid, uint64_t addr, uint8_t *buf, size_t len) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/mem", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("cannot open /proc/PID/mem (root needed, or the process is gone)");
  size_t got = 0;
  while (got < len) {
    size_t want = 4096 - ((addr + got) & 4095);
    if (want > len - got) want = len - got;
    ssize_t r = pread(fd, buf + got, want, (off_t)(addr + got));
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  return got;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const Dwfl_Callbacks sym_callbacks = { .find_elf = dwfl_linux_proc_find_elf, .find_debuginfo = dwfl_standard_find_debuginfo };

static void print_frames(int pid, const uint64_t *pcs, int n) {
  Dwfl *dwfl = dwfl_begin(&sym_callbacks);
  dwfl_report_begin(dwfl);
  dwfl_linux_proc_report(dwfl, pid);
  dwfl_report_end(dwfl, NULL, NULL);
  for (int i = 0; i < n; i++) {
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, pcs[i]);
    const char *path = "?", *sym = "??";
    uint64_t vaddr = pcs[i];
    if (mod) {
      const char *file = NULL;
      const char *name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &file, NULL);
      path = file ? file : name ? name : "?";
      Dwarf_Addr bias = 0;
      if (dwfl_module_getelf(mod, &bias)) vaddr = pcs[i] - bias;
      const char *s = dwfl_module_addrname(mod, i == 0 ? pcs[i] : pcs[i] - 1);
      if (s) sym = s;
    }
    printf("0x%" PRIx64 " %s 0x%" PRIx64 " %s\n", pcs[i], path, vaddr, sym);
  }
  dwfl_end(dwfl);
}

static uint64_t rnd_state;
static uint64_t rnd(void) { /* xorshift64 */
  rnd_state ^= rnd_state << 13; rnd_state ^= rnd_state >> 7; rnd_state ^= rnd_state << 17;
  return rnd_state;
}

/* Executable ranges of pid, for pcs that land in real code. */
static int code_ranges(int pid, uint64_t (*r)[2], int max) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) die("cannot read /proc/PID/maps");
  int n = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    unsigned long long a, b;
    char perms[8];
    if (sscanf(line, "%llx-%llx %7s", &a, &b, perms) == 3 && perms[2] == 'x') { r[n][0] = a; r[n][1] = b; n++; }
  }
  fclose(f);
  return n;
}

static int fuzz(int pid, long n, uint64_t seed) {
  uint64_t ranges[64][2];
  int nr = code_ranges(pid, ranges, 64);
  if (nr == 0) die("no code mapped");
  rnd_state = seed | 1;
  static uint8_t stack[16384];
  uint64_t pcs[256];
  int maxf = 0;
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    uint64_t *w = (uint64_t *)stack;
    for (size_t j = 0; j < sizeof stack / 8; j++) {
      uint64_t k = rnd() % 4;
      int ri = (int)(rnd() % (uint64_t)nr);
      w[j] = k == 0 ? ranges[ri][0] + rnd() % (ranges[ri][1] - ranges[ri][0]) : k == 1 ? 0x7ff000000000ull + (rnd() % 16384) : rnd();
    }
    int ri = (int)(rnd() % (uint64_t)nr);
    uint64_t sp = 0x7ff000000000ull + (rnd() % 64) * 8;
    uint64_t regs[3] = {
      rnd() % 8 ? ranges[ri][0] + rnd() % (ranges[ri][1] - ranges[ri][0]) : rnd(),
      sp, rnd() % 2 ? sp + (rnd() % 16384) : rnd(),
    };
    size_t len = rnd() % 3 ? sizeof stack : rnd() % sizeof stack;
    int max = 1 + (int)(rnd() % 256);
    int got = ls_unwind(pid, regs, stack, len, sp, pcs, max);
    if (got < 1 || got > max) { fprintf(stderr, "fuzz: bad count %d (max %d)\n", got, max); return 1; }
    if (pcs[0] != regs[0]) { fprintf(stderr, "fuzz: first pc is not ip\n"); return 1; }
    if (got > maxf) maxf = got;
  }
  printf("fuzz %ld unwinds, max %d frames, us_per_unwind %.2f\n", n, maxf, (now_us() - t0) / (double)n);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "fuzz") == 0) return fuzz((int)num(argv[2]), (long)num(argv[3]), num(argv[4]));
  if (argc < 3) die("usage: ls-unwind-test mem PID IP SP BP [--len N] [--repeat N [--fresh]] | ptrace PID [...]");
  int pid = (int)num(argv[2]);
  uint64_t regs[3];
  int argi;
  bool use_ptrace = strcmp(argv[1], "ptrace") == 0;
  if (strcmp(argv[1], "mem") == 0) {
    if (argc < 6) die("mem needs PID IP SP BP");
    regs[0] = num(argv[3]); regs[1] = num(argv[4]); regs[2] = num(argv[5]);
    argi = 6;
  } else if (use_ptrace) {
    argi = 3;
  } else die("unknown mode");
  size_t len = 32768;
  long repeat = 0;
  bool fresh = false;
  for (; argi < argc; argi++) {
    if (strcmp(argv[argi], "--len") == 0 && argi + 1 < argc) len = num(argv[++argi]);
    else if (strcmp(argv[argi], "--repeat") == 0 && argi + 1 < argc) repeat = (long)num(argv[++argi]);
    else if (strcmp(argv[argi], "--fresh") == 0) fresh = true;
    else die("unknown option");
  }
  if (len > (64u << 20)) die("--len too large");
  if (use_ptrace) {
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) die("cannot ptrace the process");
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) die("cannot stop the process");
    int st;
    if (waitpid(pid, &st, __WALL) != pid) die("waitpid failed");
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, pid, 0, &r) != 0) die("cannot read registers");
    regs[0] = r.rip; regs[1] = r.rsp; regs[2] = r.rbp;
  }
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) die("out of memory");
  size_t got = read_stack(pid, regs[1], buf, len);
  if (use_ptrace) ptrace(PTRACE_DETACH, pid, 0, 0);

  uint64_t pcs[256];
  double t0 = now_us();
  int n = ls_unwind(pid, regs, buf, got, regs[1], pcs, 256);
  double cold = now_us() - t0;
  if (n < 0) die("ls_unwind failed");
  if (repeat > 0) {
    t0 = now_us();
    for (long i = 0; i < repeat; i++) {
      if (fresh) ls_unwind_forget(pid);
      ls_unwind(pid, regs, buf, got, regs[1], pcs, 256);
    }
    fprintf(stderr, "us_per_unwind %.3f cold_us %.1f frames %d\n", (now_us() - t0) / repeat, cold, n);
  }
  print_frames(pid, pcs, n);
  ls_unwind_forget(pid);
  free(buf);
  return 0;
}
