/* ls-kstack: the kernel side's mmap events with full user stacks (kstack.bpf.c + ls_unwind).
 *   ls-kstack [--exe PATH] PID...   prints READY once attached, then one line per event
 *   (processes that exec PATH become targets too):
 *   MS <ns> <pid> <tid> <addr> <len> <prot> <flags> <modpid> <parent> <pc,pc,...>
 *      pcs leaf first, hex; modpid: whose modules were used (the parent's for a forked child
 *      gone since); parent: the pid it was forked from while traced (0: unknown), whose
 *      modules it has until it execs
 *   LOST <count>       stacks dropped (ring buffer full): those mmaps come with their leaf pc only
 * and stops on SIGINT/SIGTERM or when stdin closes. Targets' children are followed.
 *   ls-kstack --verify   loads the program as --exe and PIDs do, prints each BPF program's
 *   verified instructions and stack (JSON lines, ../../common/ls_verify.h) and exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "kstack.h"
#include "kstack.skel.h"
#include "../unwind.h"
#include "ls_verify.h"

#define MAX_PCS 128

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

/* child -> parent, for children that exit before their events are read: until it execs, a
 * forked child has its parent's modules, so the parent's can unwind its stacks. */
#define FORKS 4096
static struct { __u32 child, parent; } forks[FORKS];
static unsigned fork_next;

static int parent_of(__u32 child) {
  for (unsigned i = 0; i < FORKS; i++)
    if (forks[i].child == child) return (int)forks[i].parent;
  return 0;
}

static void drop_fork(__u32 child) {
  for (unsigned i = 0; i < FORKS; i++)
    if (forks[i].child == child) forks[i].child = 0;
}

static int alive(int pid) {
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  return access(path, R_OK) == 0;
}

/* A live process that is not a zombie: its maps list something. */
static int has_maps(int pid) {
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int c = fgetc(f);
  fclose(f);
  return c != EOF;
}

static int handle(void *ctx, void *data, size_t size) {
  (void)ctx;
  const struct ks_event *e = data;
  if (size < sizeof(struct ks_head)) return 0;
  if (e->kind == KS_FORK) {
    forks[fork_next++ % FORKS].child = (__u32)e->ret;
    forks[(fork_next - 1) % FORKS].parent = e->pid;
    return 0;
  }
  if (e->kind == KS_EXEC) {
    drop_fork(e->pid);
    ls_unwind_forget((int)e->pid);
    return 0;
  }
  if (e->kind == KS_EXIT) {
    ls_unwind_forget((int)e->pid);
    return 0;
  }
  if (e->kind != KS_MMAP) return 0;
  uint64_t pcs[MAX_PCS];
  size_t slen = size >= sizeof(struct ks_event) && e->stack_len <= KS_STACK_BYTES ? e->stack_len : 0;
  int who = (int)e->pid;
  int n = ls_unwind(who, (const uint64_t *)e->regs, e->stack, slen, e->regs[1], pcs, MAX_PCS);
  int parent = slen ? parent_of(e->pid) : 0;
  /* Gone (or a zombie, whose maps are empty) before we got here, or while we unwound it (then
   * the frames stop early where a module could no longer be read): its parent's modules are
   * the same until it execs; keep the longer unwind. */
  if (parent && (n <= 1 || !has_maps(e->pid)) && alive(parent)) {
    uint64_t pcs2[MAX_PCS];
    int n2 = ls_unwind(parent, (const uint64_t *)e->regs, e->stack, slen, e->regs[1], pcs2, MAX_PCS);
    if (n2 > n) {
      ls_unwind_forget(who);
      who = parent;
      n = n2;
      memcpy(pcs, pcs2, sizeof(uint64_t) * (size_t)n2);
    }
  }
  printf("MS %llu %u %u %llu %llu %llu %llu %d %d ", (unsigned long long)e->ts, e->pid, e->tid,
         (unsigned long long)e->ret, (unsigned long long)e->len, (unsigned long long)e->prot,
         (unsigned long long)e->flags, who, parent_of(e->pid));
  for (int i = 0; i < n; i++) printf(i ? ",%llx" : "%llx", (unsigned long long)pcs[i]);
  putchar('\n');
  return 0;
}

static int verifying;
static int quiet(enum libbpf_print_level level, const char *fmt, va_list args) {
  va_list a2;
  va_copy(a2, args);
  ls_verify_libbpf(level, fmt, a2);
  va_end(a2);
  return level == LIBBPF_WARN && !verifying ? vfprintf(stderr, fmt, args) : 0;
}

/* Opens and loads the program, following exe when given; NULL and the reason in why. */
static struct kstack *load(const char *exe, char *why, size_t whysz) {
  struct kstack *skel = kstack__open();
  if (!skel) { snprintf(why, whysz, "cannot open the BPF program (%s)", strerror(errno)); return NULL; }
  if (exe) {
    memcpy((char *)skel->rodata->exe_path, exe, strlen(exe) + 1);
    skel->rodata->exe_len = (__u32)strlen(exe);
  }
  struct ls_verify v;
  ls_verify_prepare(&v, skel->obj, verifying ? LS_VERIFY_STATS : LS_VERIFY_ON_FAILURE);
  int err = kstack__load(skel);
  if (err) {
    ls_verify_reason(&v, err < 0 ? -err : errno, why, whysz);
    kstack__destroy(skel);
    skel = NULL;
  } else if (verifying) ls_verify_print(&v, skel->obj, stdout, "ls-kstack", exe ? "exe" : "pids");
  ls_verify_free(&v);
  return skel;
}

/* Both configurations: PIDs only, and --exe with the longest path it takes. */
static int verify_all(void) {
  char longest[sizeof(((struct kstack__rodata *)0)->exe_path)], why[1024];
  memset(longest, 'x', sizeof longest - 1);
  longest[0] = '/';
  longest[sizeof longest - 1] = 0;
  const char *exes[] = { NULL, longest };
  int rc = 0;
  verifying = 1;
  libbpf_set_print(quiet);
  for (int i = 0; i < 2; i++) {
    struct kstack *s = load(exes[i], why, sizeof why);
    if (s) { kstack__destroy(s); continue; }
    printf("{\"loader\":\"ls-kstack\",\"config\":\"%s\",\"error\":", exes[i] ? "exe" : "pids");
    ls_json_str(stdout, why);
    printf("}\n");
    rc = 1;
  }
  return rc;
}

int main(int argc, char **argv) {
  int first = 1;
  const char *exe = NULL;
  if (argc == 2 && strcmp(argv[1], "--verify") == 0) return verify_all();
  if (argc >= 3 && strcmp(argv[1], "--exe") == 0) { exe = argv[2]; first = 3; }
  if (argc <= first && !exe) { fprintf(stderr, "ls-kstack: usage: ls-kstack [--exe PATH] PID...\n"); return 2; }
  if (exe && (strlen(exe) == 0 || strlen(exe) >= sizeof(((struct kstack__rodata *)0)->exe_path))) { fprintf(stderr, "ls-kstack: --exe path too long\n"); return 2; }
  libbpf_set_print(quiet);
  char why[1024];
  struct kstack *skel = load(exe, why, sizeof why);
  if (!skel) { fprintf(stderr, "ls-kstack: cannot load the BPF program: %s\n", why); return 1; }
  for (int i = first; i < argc; i++) {
    char *end;
    long pid = strtol(argv[i], &end, 10);
    if (*end || pid <= 0 || pid > 0x7fffffff) { fprintf(stderr, "ls-kstack: not a pid: %s\n", argv[i]); return 2; }
    __u32 k = (__u32)pid;
    __u8 one = 1;
    bpf_map__update_elem(skel->maps.targets, &k, sizeof k, &one, sizeof one, BPF_ANY);
  }
  if (kstack__attach(skel)) { fprintf(stderr, "ls-kstack: cannot attach (%s)\n", strerror(errno)); return 1; }
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), handle, NULL, NULL);
  if (!rb || ring_buffer__add(rb, bpf_map__fd(skel->maps.heads), handle, NULL)) { fprintf(stderr, "ls-kstack: no ring buffer\n"); return 1; }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("READY\n");
  __u64 lost_seen = 0;
  while (!stop) {
    int r = ring_buffer__poll(rb, 100);
    if (r < 0 && r != -EINTR) break;
    struct pollfd pf = { .fd = 0, .events = POLLIN };
    if (poll(&pf, 1, 0) > 0) {
      char buf[64];
      if (read(0, buf, sizeof buf) <= 0) stop = 1; /* stdin closed: our parent is gone */
    }
    __u32 k = 0;
    __u64 lost = 0;
    if (bpf_map__lookup_elem(skel->maps.lost, &k, sizeof k, &lost, sizeof lost, 0) == 0 && lost > lost_seen) {
      printf("LOST %llu\n", (unsigned long long)(lost - lost_seen));
      lost_seen = lost;
    }
  }
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  kstack__destroy(skel);
  return 0;
}
