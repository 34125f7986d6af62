/* lstrace-luajit: traces the LuaJIT GC allocator of running processes.
 *
 *   lstrace-luajit --pid PID --lib PATH [--pid PID --lib PATH...] [--duration-ms N]
 *     trace; records on stdout. PATH is the module of PID that exports the Lua C API (LuaJIT
 *     2.1), as the caller found it (src/luajit/detect.ts): this program looks up no symbol.
 *
 * stdout: per record a u32 length, then LJ_REC_STACK (u8 kind, u32 id, struct lj_event with
 * its frames: a stack's first use) or LJ_REC_EVENT (struct lj_rec_event), little-endian.
 * stderr: one JSON object per line ("state", "warning", "exit", "done") for the caller.
 * Needs no debug symbols: a probe on exported lua_* functions yields a lua_State, and from
 * its global_State the allocator function (allocf) is found and probed by address. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "lj_event.h"
#include "lj_alloc.skel.h"
#include "ls_verify.h"

#define MAX_PIDS 256
#define MAX_DISC 16

/* Any call gives a lua_State; these are called at least once per request by common hosts
 * (ngx_lua runs each request in a coroutine: lua_newthread, lua_resume). Few, because an
 * undiscovered process keeps paying for them. */
static const char *discover_default[] = {
  "lua_resume", "lua_newthread", "lua_pcall", "lua_gettop", "lua_settop", "lua_getfield", NULL,
};
static const char *discover_arg[MAX_DISC + 1];
static int ndiscover_arg;

struct target {
  int pid;
  char lib[4096];       /* module exporting the Lua API */
  int has_lib;
  char why[4600];
  struct bpf_link *disc[MAX_DISC];
  int ndisc;
  struct bpf_link *enter, *exit, *site[5];
  int found, gone, fast;
  int memfd;                      /* /proc/PID/mem, opened on first use */
  unsigned long long g, jtrace;   /* global_State; address of jit_State.trace once found */
  unsigned long long jtrace_try;  /* ms of the last search */
  int settle;                     /* 0 wait for GC pause, 1 wait for a cycle to start, 2 for it to end, 3 done */
  int gcstate;                    /* last gc.state seen (-1 unknown) */
  unsigned gccycles;              /* GC cycles seen ending while traced (polled: a lower bound) */
  unsigned long long nalloc;      /* allocations and reallocations recorded */
};

static struct target T[MAX_PIDS];
static int nT;
static volatile sig_atomic_t stop;
static unsigned long long nevents;
static FILE *out;

static void on_signal(int s) { (void)s; stop = 1; }

static void jsonstr(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void warnj(int pid, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "{\"event\":\"warning\",\"pid\":%d,\"message\":", pid);
  jsonstr(stderr, buf);
  fprintf(stderr, "}\n");
  fflush(stderr);
}

/* The file mapping of pid containing addr: module path and file offset. */
static int addr_to_file(int pid, unsigned long long addr, char *path, size_t pathsz, unsigned long long *foff) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/maps", pid);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  char line[4608];
  int rc = -1;
  while (fgets(line, sizeof line, f)) {
    char perms[8], mpath[4096] = "";
    unsigned long lo, hi, off;
    if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095[^\n]", &lo, &hi, perms, &off, mpath) < 4) continue;
    if (addr < lo || addr >= hi) continue;
    if (perms[2] == 'x' && mpath[0] == '/') {
      snprintf(path, pathsz, "%s", mpath);
      *foff = addr - lo + off;
      rc = 0;
    }
    break;
  }
  fclose(f);
  return rc;
}

static struct target *target_of(int pid) {
  for (int i = 0; i < nT; i++) if (T[i].pid == pid) return &T[i];
  return NULL;
}

static struct lj_alloc_bpf *skel;
static struct ring_buffer *the_rb;
static unsigned long long now_ms(void);

static int readmem(struct target *t, unsigned long long addr, void *buf, size_t len) {
  if (t->memfd <= 0) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", t->pid);
    t->memfd = open(p, O_RDONLY | O_CLOEXEC);
    if (t->memfd < 0) { t->memfd = -1; return -1; }
  }
  return pread(t->memfd, buf, len, (off_t)addr) == (ssize_t)len ? 0 : -1;
}

static int plausible(unsigned long long v) { return v > 0x10000 && v < 0x800000000000ULL && !(v & 7); }

/* 1: arr[n] is GCtrace number n; 2: a trace of another number; 0: anything else. */
static int trace_at(struct target *t, unsigned long long arr, unsigned n) {
  unsigned long long T = 0;
  unsigned char h[120];
  if (readmem(t, arr + 8ULL * n, &T, 8) || !plausible(T) || readmem(t, T, h, sizeof h)) return 0;
  if (h[9] != 9) return 0; /* ~LJ_TTRACE */
  unsigned short no;
  memcpy(&no, h + 104, 2);
  return no == n ? 1 : 2;
}

/* jit_State follows global_State in GG_State; its `trace` field is the GCtrace* array. Found
 * by content (the slot of trace N holds trace N, and no trace sits in another's slot), so no
 * jit_State layout is assumed. The BPF side uses it to find the running trace's machine code. */
static void find_trace_array(struct target *t, unsigned traceno) {
  static unsigned long long region[2048];
  if (t->jtrace || !t->g || traceno == 0 || traceno > 65535) return;
  if (readmem(t, t->g, region, sizeof region)) return;
  for (unsigned i = 0; i < 2048; i++) {
    unsigned long long arr = region[i];
    if (!plausible(arr) || trace_at(t, arr, traceno) != 1) continue;
    int others = 0, ok = 1;
    for (unsigned k = 1; k <= 16 && ok; k++) {
      if (k == traceno) continue;
      int v = trace_at(t, arr, k);
      if (v == 1) others++;
      else if (v == 2) ok = 0;
    }
    if (!ok || !others) continue;
    t->jtrace = t->g + 8ULL * i;
    uint32_t key = (uint32_t)t->pid;
    uint64_t val = t->jtrace;
    bpf_map_update_elem(bpf_map__fd(skel->maps.jtrace), &key, &val, BPF_ANY);
    fprintf(stderr, "{\"event\":\"jit\",\"pid\":%d,\"trace_array\":\"0x%llx\"}\n", t->pid, t->jtrace);
    fflush(stderr);
    return;
  }
}

/* lj_alloc_f as GCC emits it (x86-64):
 *   test rcx,rcx ; je F ; test rsi,rsi ; je M ; mov rdx,rcx ; jmp lj_alloc_realloc
 *   F: jmp lj_alloc_free        M: mov rsi,rcx ; jmp lj_alloc_malloc
 * Probing the three jmps instead of the entry avoids single-stepping the first instruction
 * (a debug trap per call). Offsets of the jmps relative to allocf; -1 when it does not match. */
static int fast_sites(struct target *t, unsigned long long allocf, long long *fs, long long *ms, long long *rs) {
  unsigned char c[64];
  if (getenv("LSTRACE_LUAJIT_NO_FAST")) return -1;
  if (readmem(t, allocf, c, sizeof c)) return -1;
  static const unsigned char head[] = { 0x48, 0x85, 0xc9, 0x74 };
  if (memcmp(c, head, 4) || c[5] != 0x48 || c[6] != 0x85 || c[7] != 0xf6 || c[8] != 0x74) return -1;
  if (c[10] != 0x48 || c[11] != 0x89 || c[12] != 0xca || c[13] != 0xe9) return -1;
  long long f = 5 + (signed char)c[4], m = 10 + (signed char)c[9];
  if (f < 18 || f > 58 || m < 18 || m > 55) return -1;
  if (c[f] != 0xe9) return -1;
  if (c[m] != 0x48 || c[m + 1] != 0x89 || c[m + 2] != 0xce || c[m + 3] != 0xe9) return -1;
  *fs = f; *ms = m + 3; *rs = 13;
  return 0;
}

static int adopt(struct target *t, unsigned long long L, unsigned long long g, unsigned long long allocf, unsigned long long allocd);

/* Forked workers (nginx) share their parent's Lua VM at the same addresses: once one is
 * known, check the others' memory for the same global_State instead of waiting for a call. */
static void adopt_siblings(unsigned long long g, unsigned long long allocf) {
  for (int i = 0; i < nT; i++) {
    struct target *t = &T[i];
    if (t->found || t->gone || !t->has_lib) continue;
    unsigned long long f = 0, d = 0, mainth = 0, glref = 0;
    unsigned char gct = 0;
    if (readmem(t, g + LJ_G_ALLOCF, &f, 8) || f != allocf) continue;
    if (readmem(t, g + LJ_G_ALLOCD, &d, 8) || readmem(t, g + LJ_G_MAINTHREF, &mainth, 8)) continue;
    if (!plausible(mainth) || readmem(t, mainth + LJ_L_GCT, &gct, 1) || gct != 6) continue;
    if (readmem(t, mainth + LJ_L_GLREF, &glref, 8) || glref != g) continue;
    adopt(t, mainth, g, allocf, d);
  }
}

static void on_discover(const struct lj_event *e) {
  struct target *t = target_of((int)e->pid);
  if (!t || t->found) return;
  if (!e->nsize) {
    warnj(t->pid, "global_State at 0x%llx does not look like LuaJIT 2.1 GC64: unsupported build", e->g);
    t->found = -1;
    return;
  }
  if (adopt(t, e->ptr, e->g, e->ret, e->osize) == 0) adopt_siblings(e->g, e->ret);
}

/* Removing a uprobe waits for the kernel to be sure no CPU still runs its handler: ~2 s per
 * worker measured on 6.18 under load, during which the ring buffers, not consumed, filled up
 * and records were lost. The discovery probes are removed on a thread of their own; they are
 * already inert (targets[pid] == 2). */
struct reaper { struct bpf_link *l[MAX_DISC]; int n; };
static pthread_t reapers[MAX_PIDS];
static int nreapers;

static void *reap(void *arg) {
  struct reaper *r = arg;
  for (int i = 0; i < r->n; i++) bpf_link__destroy(r->l[i]);
  free(r);
  return NULL;
}

static void remove_discovery(struct target *t) {
  struct reaper *r = calloc(1, sizeof *r);
  if (r && nreapers < MAX_PIDS) {
    for (int i = 0; i < t->ndisc; i++) r->l[r->n++] = t->disc[i];
    if (pthread_create(&reapers[nreapers], NULL, reap, r) == 0) nreapers++;
    else reap(r);
  } else {
    free(r);
    for (int i = 0; i < t->ndisc; i++) bpf_link__destroy(t->disc[i]);
  }
  for (int i = 0; i < t->ndisc; i++) t->disc[i] = NULL;
  t->ndisc = 0;
}

static int adopt(struct target *t, unsigned long long L, unsigned long long g, unsigned long long allocf, unsigned long long allocd) {
  unsigned long long t_start = now_ms(), t_attached = 0;
  char path[4096];
  unsigned long long foff = 0;
  if (addr_to_file(t->pid, allocf, path, sizeof path, &foff) != 0) {
    warnj(t->pid, "global_State at 0x%llx does not look like LuaJIT 2.1 GC64 (allocf 0x%llx is not code): unsupported build", g, allocf);
    t->found = -1;
    return -1;
  }
  struct { uint32_t tgid, pad; uint64_t msp; } key = { (uint32_t)t->pid, 0, allocd };
  uint64_t gv = g;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.states), &key, &gv, BPF_ANY)) {
    warnj(t->pid, "cannot record the global_State: %s", strerror(errno));
    return -1;
  }
  char full[4200];
  snprintf(full, sizeof full, "/proc/%d/root%s", t->pid, path);
  long long fs, ms, rs;
  if (fast_sites(t, allocf, &fs, &ms, &rs) == 0) {
    /* Offsets inside the same mapping as allocf. */
    t->site[0] = bpf_program__attach_uprobe(skel->progs.lj_free_site, false, t->pid, full, foff + fs);
    t->site[1] = bpf_program__attach_uprobe(skel->progs.lj_malloc_site, false, t->pid, full, foff + ms);
    t->site[2] = bpf_program__attach_uprobe(skel->progs.lj_alloc_exit, true, t->pid, full, foff + ms);
    t->site[3] = bpf_program__attach_uprobe(skel->progs.lj_realloc_site, false, t->pid, full, foff + rs);
    t->site[4] = bpf_program__attach_uprobe(skel->progs.lj_alloc_exit, true, t->pid, full, foff + rs);
    int ok = 1;
    for (int i = 0; i < 5; i++) if (!t->site[i]) ok = 0;
    if (ok) t->fast = 1;
    else for (int i = 0; i < 5; i++) { bpf_link__destroy(t->site[i]); t->site[i] = NULL; }
  }
  if (!t->fast) {
    t->enter = bpf_program__attach_uprobe(skel->progs.lj_alloc_enter, false, t->pid, full, foff);
    t->exit = bpf_program__attach_uprobe(skel->progs.lj_alloc_exit, true, t->pid, full, foff);
  }
  if (!t->fast && (!t->enter || !t->exit)) {
    warnj(t->pid, "cannot attach to the allocator at %s+0x%llx: %s", path, foff, strerror(errno));
    t->found = -1;
    return -1;
  }
  uint32_t k = (uint32_t)t->pid, v = 2;
  bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &k, &v, BPF_ANY);
  t->found = 1;
  t->g = g;
  for (unsigned n = 1; n <= 4 && !t->jtrace; n++) find_trace_array(t, n);
  t_attached = now_ms();
  remove_discovery(t);
  fprintf(stderr, "{\"event\":\"state\",\"attach_ms\":%llu,\"detach_ms\":%llu,\"pid\":%d,\"L\":\"0x%llx\",\"g\":\"0x%llx\",\"allocf\":\"0x%llx\",\"allocd\":\"0x%llx\",\"offset\":%llu,\"probes\":\"%s\",\"module\":",
          t_attached - t_start, now_ms() - t_attached, t->pid, L, g, allocf, allocd, foff, t->fast ? "tail-calls" : "entry");
  jsonstr(stderr, path);
  fprintf(stderr, "}\n");
  fflush(stderr);
  return 0;
}

/* Stack interning: each distinct raw Lua stack (with what decides its labels: pid, flags,
 * VM state, trace and machine code offset) is written once as a STACK record; events refer
 * to it by id. Keeps the pipe and the TypeScript side at a fixed small cost per event. */
#define STACK_SLOTS (1u << 21)
static uint64_t *stack_hash;
static uint32_t *stack_id;
static uint32_t nstacks;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ULL; }
  return h;
}

static uint32_t intern_stack(const struct lj_event *e, size_t size) {
  uint64_t h = 0xcbf29ce484222325ULL;
  int vm = (e->flags & LJ_F_VM) ? e->vmstate : 0;
  h = fnv(h, &e->pid, 4);
  h = fnv(h, &e->flags, 1);
  h = fnv(h, &vm, 4);
  h = fnv(h, &e->trace, 8);
  h = fnv(h, &e->mcofs, 4);
  h = fnv(h, e->frames, size - LJ_EVENT_HDR);
  if (!h) h = 1;
  uint32_t i = (uint32_t)(h ^ (h >> 32)) & (STACK_SLOTS - 1);
  for (uint32_t probe = 0; probe < STACK_SLOTS; probe++, i = (i + 1) & (STACK_SLOTS - 1)) {
    if (stack_hash[i] == h) return stack_id[i];
    if (!stack_hash[i]) {
      if (nstacks >= STACK_SLOTS / 2) return 0; /* full: events go without a stack */
      stack_hash[i] = h;
      stack_id[i] = ++nstacks;
      uint32_t len = (uint32_t)(1 + 4 + size);
      unsigned char kind = LJ_REC_STACK;
      fwrite(&len, 4, 1, out);
      fwrite(&kind, 1, 1, out);
      fwrite(&nstacks, 4, 1, out);
      fwrite(e, 1, size, out);
      return nstacks;
    }
  }
  return 0;
}

/* One call record to the output, length-prefixed like every record. */
static void write_rec(const struct lj_rec_event *r) {
  uint32_t len = sizeof *r;
  fwrite(&len, 4, 1, out);
  fwrite(r, 1, sizeof *r, out);
  nevents++;
}

static int on_record(void *ctx, void *data, size_t size) {
  (void)ctx;
  const struct lj_event *e = data;
  if (size == LJ_FREE_EVENT_SIZE) {
    const struct lj_free_event *fe = data;
    struct lj_rec_event r;
    memset(&r, 0, sizeof r);
    r.kind = LJ_REC_EVENT;
    r.op = LJ_OP_FREE;
    r.pid = fe->pid;
    r.tid = fe->tid;
    r.ts = fe->ts;
    r.ptr = fe->ptr;
    write_rec(&r);
    return 0;
  }
  if (size < LJ_EVENT_HDR) return 0;
  if (e->op == LJ_OP_DISCOVER) { on_discover(e); return 0; }
  if ((e->flags & LJ_F_TRACE) && !e->trace && e->vmstate > 0) {
    struct target *t = target_of((int)e->pid);
    unsigned long long now = now_ms();
    if (t && !t->jtrace && now - t->jtrace_try >= 250) {
      t->jtrace_try = now;
      find_trace_array(t, (unsigned)e->vmstate);
    }
  }
  if (e->op != LJ_OP_FREE) {
    static struct target *last;
    if (!last || last->pid != (int)e->pid) last = target_of((int)e->pid);
    if (last) last->nalloc++;
  }
  struct lj_rec_event r;
  memset(&r, 0, sizeof r);
  r.kind = LJ_REC_EVENT;
  r.op = e->op | ((e->flags & LJ_F_DRAIN) ? LJ_OP_DRAIN : 0);
  r.pid = e->pid;
  r.tid = e->tid;
  r.stack = (e->op == LJ_OP_FREE || ((e->flags & LJ_F_DRAIN) && e->op == LJ_OP_ALLOC)) ? 0 : intern_stack(e, size);
  r.ts = e->ts;
  r.ptr = e->ptr;
  r.ret = e->ret;
  r.nsize = e->nsize;
  write_rec(&r);
  return 0;
}

static int libbpf_quiet(enum libbpf_print_level lvl, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  ls_verify_libbpf(lvl, fmt, ap2);
  va_end(ap2);
  if (lvl == LIBBPF_WARN && getenv("LSTRACE_LUAJIT_DEBUG")) return vfprintf(stderr, fmt, ap);
  return 0;
}

/* The switches the BPF side is built with (read-only data, fixed at load: each combination is
 * a different program for the verifier). */
struct lj_cfg { const char *name; __u32 mode, stats, nocache; };

/* Opens and loads the programs with cfg; on failure NULL and the reason in why. */
static struct lj_alloc_bpf *load_skel(const struct lj_cfg *cfg, struct ls_verify *v, __u32 log, char *why, size_t whysz) {
  struct lj_alloc_bpf *s = lj_alloc_bpf__open();
  if (!s) { snprintf(why, whysz, "cannot open the BPF object: %s", strerror(errno)); return NULL; }
  s->rodata->cfg_mode = cfg->mode;
  s->rodata->cfg_stats = cfg->stats;
  s->rodata->cfg_nocache = cfg->nocache;
  ls_verify_prepare(v, s->obj, log);
  int err = lj_alloc_bpf__load(s);
  if (err) {
    ls_verify_reason(v, err < 0 ? -err : errno, why, whysz);
    lj_alloc_bpf__destroy(s);
    ls_verify_free(v);
    return NULL;
  }
  return s;
}

/* --verify: loads every configuration a user or the bench can choose and prints, per program,
 * the instructions the verifier processed against the kernel's limit (JSON lines on stdout). */
static int verify_all(void) {
  static const struct lj_cfg cfgs[] = {
    { "default", 0, 0, 0 }, { "stats", 0, 1, 0 }, { "no-walk-cache", 0, 0, 1 }, { "stats,no-walk-cache", 0, 1, 1 },
    { "nowalk", 1, 0, 0 }, { "bare", 2, 0, 0 }, { "nomcode", 3, 0, 0 }, { "nomcode,stats", 3, 1, 0 },
  };
  int rc = 0;
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    struct ls_verify v;
    char why[1024];
    struct lj_alloc_bpf *s = load_skel(&cfgs[i], &v, LS_VERIFY_STATS, why, sizeof why);
    if (!s) {
      printf("{\"loader\":\"lstrace-luajit\",\"config\":\"%s\",\"error\":", cfgs[i].name);
      jsonstr(stdout, why);
      printf("}\n");
      rc = 1;
      continue;
    }
    ls_verify_print(&v, s->obj, stdout, "lstrace-luajit", cfgs[i].name);
    lj_alloc_bpf__destroy(s);
    ls_verify_free(&v);
  }
  fflush(stdout);
  return rc;
}

static unsigned long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000ULL + (unsigned long long)ts.tv_nsec / 1000000ULL;
}

#define LJ_G_GCSTATE 33 /* global_State.gc.state (GCSpause = 0) */

/* After the traced time: stop counting new blocks (they are marked, user space only matches
 * their frees), keep recording frees, until one full GC
 * cycle has started and finished in every process. Then every block still outstanding was
 * reachable when that cycle began: garbage the lazy GC had not collected yet is gone. */
static void settle(long max_ms) {
  int fd = bpf_map__fd(skel->maps.draining);
  skel->bss->drain_any = 1;
  for (int i = 0; i < nT; i++) {
    uint32_t k = (uint32_t)T[i].pid, v = 1;
    /* A process whose Lua VM allocated nothing (an idle nginx master) has nothing to settle. */
    if (T[i].found == 1 && !T[i].gone && T[i].nalloc > 0) bpf_map_update_elem(fd, &k, &v, BPF_ANY);
    else T[i].settle = 3;
  }
  unsigned long long start = now_ms();
  fprintf(stderr, "{\"event\":\"settling\"}\n");
  fflush(stderr);
  for (;;) {
    int pending = 0;
    for (int i = 0; i < nT; i++) {
      struct target *t = &T[i];
      if (t->settle == 3) continue;
      unsigned char st = 0;
      if (readmem(t, t->g + LJ_G_GCSTATE, &st, 1)) { t->settle = 3; continue; }
      if (t->settle == 0 && st == 0) t->settle = 1;
      else if (t->settle == 1 && st != 0) t->settle = 2;
      else if (t->settle == 2 && st == 0) {
        t->settle = 3;
        fprintf(stderr, "{\"event\":\"settled\",\"pid\":%d,\"ms\":%llu}\n", t->pid, now_ms() - start);
        fflush(stderr);
        continue;
      }
      pending++;
    }
    if (!pending || stop) break;
    if (now_ms() - start >= (unsigned long long)max_ms) {
      for (int i = 0; i < nT; i++) if (T[i].settle != 3)
        warnj(T[i].pid, "no full GC cycle ran within %ld ms after the traced time (process idle?): outstanding Lua memory still includes garbage not yet collected", max_ms);
      break;
    }
    ring_buffer__poll(the_rb, 2);
    ring_buffer__consume(the_rb);
  }
}

static int stats_fd = -1;

/* Per BPF program: runs and total run time (kernel.bpf_stats_enabled, held by stats_fd). */
static void print_stats(void) {
  struct bpf_program *p;
  int first = 1;
  fprintf(stderr, "{\"event\":\"bpfstats\",\"programs\":{");
  bpf_object__for_each_program(p, skel->obj) {
    struct bpf_prog_info info;
    __u32 len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len)) continue;
    fprintf(stderr, "%s\"%s\":{\"runs\":%llu,\"ns\":%llu}", first ? "" : ",", bpf_program__name(p),
            (unsigned long long)info.run_cnt, (unsigned long long)info.run_time_ns);
    first = 0;
  }
  fprintf(stderr, "},\"counters\":[");
  int ncpu = libbpf_num_possible_cpus();
  for (uint32_t k = 1; ncpu > 0 && k < bpf_map__max_entries(skel->maps.counters); k++) {
    unsigned long long vals[ncpu], sum = 0;
    if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &k, vals))
      for (int i = 0; i < ncpu; i++) sum += vals[i];
    fprintf(stderr, "%s%llu", k > 1 ? "," : "", sum);
  }
  fprintf(stderr, "]}\n");
}

int main(int argc, char **argv) {
  long duration = -1, settle_ms = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pid") && i + 1 < argc) {
      int pid = atoi(argv[++i]);
      if (pid <= 0 || nT >= MAX_PIDS) { fprintf(stderr, "{\"event\":\"error\",\"message\":\"bad --pid\"}\n"); return 2; }
      T[nT++].pid = pid;
    } else if (!strcmp(argv[i], "--lib") && i + 1 < argc && nT > 0) {
      snprintf(T[nT - 1].lib, sizeof T[nT - 1].lib, "%s", argv[++i]);
      T[nT - 1].has_lib = 1;
    } else if (!strcmp(argv[i], "--duration-ms") && i + 1 < argc) duration = atol(argv[++i]);
    else if (!strcmp(argv[i], "--settle-ms") && i + 1 < argc) settle_ms = atol(argv[++i]);
    else if (!strcmp(argv[i], "--discover") && i + 1 < argc) {
      if (ndiscover_arg < MAX_DISC) discover_arg[ndiscover_arg++] = argv[++i];
      else i++;
    }
    else if (!strcmp(argv[i], "--verify")) { libbpf_set_print(libbpf_quiet); return verify_all(); }
    else { fprintf(stderr, "{\"event\":\"error\",\"message\":\"usage: lstrace-luajit --pid PID --lib PATH... [--duration-ms N] [--settle-ms N] [--discover lua_fn]...\"}\n"); return 2; }
  }
  if (!nT) { fprintf(stderr, "{\"event\":\"error\",\"message\":\"no --pid given\"}\n"); return 2; }
  for (int i = 0; i < nT; i++) {
    if (kill(T[i].pid, 0) && errno == ESRCH) { snprintf(T[i].why, sizeof T[i].why, "process %d does not exist", T[i].pid); T[i].gone = 1; continue; }
    if (!T[i].has_lib) snprintf(T[i].why, sizeof T[i].why, "no --lib given for process %d", T[i].pid);
  }
  libbpf_set_print(libbpf_quiet);
  stack_hash = calloc(STACK_SLOTS, sizeof *stack_hash);
  stack_id = calloc(STACK_SLOTS, sizeof *stack_id);
  if (!stack_hash || !stack_id) { fprintf(stderr, "{\"event\":\"error\",\"message\":\"out of memory\"}\n"); return 1; }
  out = stdout;
  /* Slack for when the reader is slow for a moment (a busy machine): a bigger pipe, then the
   * ring buffer, before anything is lost. */
  fcntl(1, F_SETPIPE_SZ, 4 << 20);
  static char obuf[1 << 20];
  setvbuf(out, obuf, _IOFBF, sizeof obuf);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  {
    /* Measurement switches (bench/luajit.bench.ts): what the probes do, and BPF run-time
     * statistics (run count and time per program, printed with "done").
     * LSTRACE_LUAJIT_STATS=2: also count and time the sections of the allocation probe (its
     * own timing costs ~0.2 us per allocation: not for overhead figures) */
    struct lj_cfg cfg = { "run", 0, 0, 0 };
    const char *mode = getenv("LSTRACE_LUAJIT_MODE");
    if (mode && !strcmp(mode, "nowalk")) cfg.mode = 1;
    else if (mode && !strcmp(mode, "bare")) cfg.mode = 2;
    else if (mode && !strcmp(mode, "nomcode")) cfg.mode = 3;
    if (getenv("LSTRACE_LUAJIT_NO_WALK_CACHE")) cfg.nocache = 1;
    const char *st = getenv("LSTRACE_LUAJIT_STATS");
    if (st && atoi(st) >= 2) cfg.stats = 1;
    struct ls_verify v;
    char why[1024];
    skel = load_skel(&cfg, &v, LS_VERIFY_ON_FAILURE, why, sizeof why);
    if (!skel) {
      fprintf(stderr, "{\"event\":\"error\",\"message\":");
      jsonstr(stderr, why);
      fprintf(stderr, "}\n");
      return 1;
    }
    ls_verify_free(&v);
  }
  if (getenv("LSTRACE_LUAJIT_STATS")) stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  int live = 0;
  for (int i = 0; i < nT; i++) {
    struct target *t = &T[i];
    if (t->gone) { warnj(t->pid, "%s", t->why); continue; }
    if (!t->has_lib) { warnj(t->pid, "%s", t->why); continue; }
    uint32_t k = (uint32_t)t->pid, v = 1;
    bpf_map_update_elem(bpf_map__fd(skel->maps.targets), &k, &v, BPF_ANY);
    char full[4200];
    snprintf(full, sizeof full, "/proc/%d/root%s", t->pid, t->lib);
    const char **discover_fns = ndiscover_arg ? discover_arg : discover_default;
    for (int j = 0; discover_fns[j] && t->ndisc < MAX_DISC; j++) {
      LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = discover_fns[j], .retprobe = false);
      struct bpf_link *l = bpf_program__attach_uprobe_opts(skel->progs.lj_discover, t->pid, full, 0, &o);
      if (l) t->disc[t->ndisc++] = l;
    }
    if (!t->ndisc) { warnj(t->pid, "cannot attach to the Lua API of %s: %s", t->lib, strerror(errno)); continue; }
    live++;
  }
  fprintf(stderr, "{\"event\":\"started\",\"targets\":%d}\n", live);
  fflush(stderr);
  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.rb0), on_record, NULL, NULL);
  if (rb && (ring_buffer__add(rb, bpf_map__fd(skel->maps.rb1), on_record, NULL) ||
             ring_buffer__add(rb, bpf_map__fd(skel->maps.rb2), on_record, NULL) ||
             ring_buffer__add(rb, bpf_map__fd(skel->maps.rb3), on_record, NULL))) {
    ring_buffer__free(rb);
    rb = NULL;
  }
  if (!rb) { fprintf(stderr, "{\"event\":\"error\",\"message\":\"cannot open the ring buffer\"}\n"); return 1; }
  the_rb = rb;
  unsigned long long start = now_ms(), lastcheck = start;
  while (!stop && live > 0) {
    /* The BPF side never wakes us (a wakeup is an interrupt per record): consume on a short timer. */
    int r = ring_buffer__poll(rb, 20);
    if (r < 0 && r != -EINTR) break;
    ring_buffer__consume(rb);
    unsigned long long now = now_ms();
    if (duration >= 0 && now - start >= (unsigned long long)duration) break;
    /* Count GC cycles (gc.state back to GCSpause): only growth across cycles means a leak. */
    for (int i = 0; i < nT; i++) {
      struct target *t = &T[i];
      unsigned char st;
      if (t->found != 1 || t->gone || readmem(t, t->g + LJ_G_GCSTATE, &st, 1)) continue;
      if (st == 0 && t->gcstate > 0) t->gccycles++;
      t->gcstate = st;
    }
    if (now - lastcheck >= 500) {
      lastcheck = now;
      fflush(out);
      for (int i = 0; i < nT; i++) {
        if (T[i].gone || !T[i].has_lib) continue;
        if (kill(T[i].pid, 0) && errno == ESRCH) {
          T[i].gone = 1;
          fprintf(stderr, "{\"event\":\"exit\",\"pid\":%d}\n", T[i].pid);
          fflush(stderr);
          if (--live == 0) break;
        }
      }
    }
  }
  for (int i = 0; i < nT; i++) if (T[i].found == 1)
    fprintf(stderr, "{\"event\":\"gc\",\"pid\":%d,\"cycles\":%u}\n", T[i].pid, T[i].gccycles);
  fflush(stderr);
  if (settle_ms > 0 && !stop && live > 0) settle(settle_ms);
  /* Detach first, then drain what the probes already wrote. */
  for (int i = 0; i < nreapers; i++) pthread_join(reapers[i], NULL);
  for (int i = 0; i < nT; i++) {
    for (int j = 0; j < T[i].ndisc; j++) bpf_link__destroy(T[i].disc[j]);
    bpf_link__destroy(T[i].enter);
    bpf_link__destroy(T[i].exit);
    for (int j = 0; j < 5; j++) bpf_link__destroy(T[i].site[j]);
  }
  ring_buffer__consume(rb);
  fflush(out);
  unsigned long long lostn = 0;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu > 0) {
    unsigned long long vals[ncpu];
    uint32_t k = 0;
    if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &k, vals))
      for (int i = 0; i < ncpu; i++) lostn += vals[i];
  }
  int undiscovered = 0;
  for (int i = 0; i < nT; i++) if (T[i].has_lib && T[i].found == 0 && !T[i].gone) {
    undiscovered++;
    warnj(T[i].pid, "no Lua API call seen: the Lua VM of process %d ran no code while traced", T[i].pid);
  }
  if (stats_fd >= 0) print_stats();
  fprintf(stderr, "{\"event\":\"done\",\"events\":%llu,\"lost\":%llu}\n", nevents, lostn);
  fflush(stderr);
  ring_buffer__free(rb);
  lj_alloc_bpf__destroy(skel);
  return 0;
}
