/* leakscope-bpf: loads leakscope's uprobe programs and attaches them to chosen processes.
 *
 * Driven by `leakscope attach` (src/attach/loader.ts) over pipes:
 *   stdin  (text, one command per line, fields separated by TABs; no shell, nothing evaluated):
 *     spec IDX FLAGS ROLE ADDR SIZE OLD DEREF STR WALK  <6 walk0 fields> <6 walk1 fields> [TAGOFF]
 *     probe IDX PID PATH SYMBOL SKIP OFFSET  attach spec IDX in process PID at file offset
 *                                    OFFSET + SKIP of PATH (the caller found SYMBOL there)
 *     trace PID [INHERIT]            follow forks and exits of PID / stop (drops its probes);
 *     untrace PID                    INHERIT 1: the processes it forks inherit its probes (they
 *                                    are traced from their first instruction, never attached)
 *     ready PID                      every probe of PID is attached: its calls count from now
 *     aggdump                        emit the aggregate tables
 *     quit
 *   stdout (binary records: u32 type, u32 payload length, payload):
 *     1 CALL    struct ls_out (its stack: the id of a STACK record sent before it, 0 = none)
 *     2 STATUS  a JSON object, one line of text; the first says the programs are loaded:
 *               {"ready":true, "mode", "unwinder", "inheritance", "verifiedInsns" (per program),
 *               "hitNs": what one probe hit costs a process here, measured at start in ns
 *               (hit_cost_ns; absent when it could not be measured)}
 *     3 LOST    u64 ring-buffer drops, u64 aggregate-map drops (totals so far)
 *     4 AGG     struct ls_agg_row
 *     5 NOTIFY  u32 kind (fork/exit), u32 pid, u64 ts, u64 a0, u64 a1 (fork: 1 = the child
 *               inherited every probe)
 *     6 STACK   u32 id, u32 pid, u64 pcs[] (caller first): sent once per distinct (pid, pcs)
 *     7 STACKS_RESET  the stack table was full and starts afresh: forget every stack id
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ls_event.h"
#include "unwind_shim.h"
#include "leakscope.skel.h"
#include "ls_verify.h"

#define MAX_PCS 64

struct ls_out {
  uint32_t kind, spec, pid, tid;
  uint64_t ts;
  uint64_t args[6];
  uint64_t ret, deref, walk_bytes;
  uint32_t walk_nodes, stack;
  char str[LS_STR_LEN];
};

struct ls_agg_row {
  uint32_t pid, spec;
  uint64_t site;
  int64_t live_count, live_bytes;
  uint64_t total_count, total_bytes;
};

struct agg_key { uint32_t pid, spec; uint64_t site; };
struct live_key { uint32_t pid, pad; uint64_t addr; }; /* as in leakscope.bpf.c */
struct agg_val { int64_t live_count, live_bytes; uint64_t total_count, total_bytes; };

/* A probe's link; for an inherited probe, `tfs` names its tracefs uprobe event (removed after
 * it) and `inh_fd` is its inherited perf event (closed with it). */
struct link_ent { int pid; struct bpf_link *link; char tfs[32]; int inh_fd; };

static struct leakscope *skel;
static struct link_ent *links;
static size_t nlinks, caplinks;
static ls_unwind_fn unwind_fn;
static ls_unwind_forget_fn unwind_forget_fn;
static uint32_t spec_flags[LS_MAX_SPECS];
static int32_t spec_str_arg[LS_MAX_SPECS]; /* the string argument (a pool's tag), -1 none */
static volatile sig_atomic_t stop;

/* Calls count only between the moment every probe of a process is attached ("ready PID") and
 * the moment detaching starts: outside that window some probes miss what others see (a pool
 * created with no destroy probe yet would look leaked). Open addressing, pid 0 = empty. */
#define READY_SLOTS 16384
/* per pid: inherit = its forks inherit its probes (`trace PID 1`); partial = some probe could
 * not be attached so that forks inherit it (they are then attached on their own) */
static struct { uint32_t pid; uint64_t ts; uint8_t inherit, partial; } ready_tab[READY_SLOTS];
static uint64_t stop_ts = UINT64_MAX;

static uint64_t mono_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static int ready_slot(uint32_t pid, int insert)
{
  for (uint32_t i = 0, h = pid * 2654435761u; i < READY_SLOTS; i++) {
    uint32_t k = (h + i) % READY_SLOTS;
    if (ready_tab[k].pid == pid) return k;
    if (ready_tab[k].pid == 0) {
      if (!insert) return -1;
      ready_tab[k].pid = pid;
      return k;
    }
  }
  return -1;
}

static int in_window(uint32_t pid, uint64_t ts)
{
  if (ts > stop_ts) return 0;
  int k = ready_slot(pid, 0);
  return k >= 0 && ready_tab[k].ts && ts >= ready_tab[k].ts;
}

/* Records wait in memory until stdout (a pipe to node, non-blocking) takes them: while node is
 * busy the loader keeps draining the BPF ring buffer, whose events (user stack copies, KiBs
 * each) would otherwise fill it and be lost; a record is ~180 bytes. Past OUT_MAX the loader
 * waits for the pipe. */
#define OUT_MAX ((size_t)256 << 20)
static char *out_buf;
static size_t out_len, out_cap, out_off;

static void out_flush(int block)
{
  while (out_off < out_len) {
    ssize_t w = write(1, out_buf + out_off, out_len - out_off);
    if (w > 0) { out_off += w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN && block) {
      struct pollfd p = { .fd = 1, .events = POLLOUT };
      poll(&p, 1, 1000);
      continue;
    }
    if (w < 0 && errno != EAGAIN) out_off = out_len; /* the reader is gone: drop */
    break;
  }
  if (out_off == out_len) out_off = out_len = 0;
}

static void out_put(const void *p, size_t n)
{
  if (out_len + n > out_cap) {
    if (out_off) { memmove(out_buf, out_buf + out_off, out_len - out_off); out_len -= out_off; out_off = 0; }
    if (out_len + n > OUT_MAX) { out_flush(1); }
    if (out_len + n > out_cap) {
      size_t cap = out_cap ? out_cap : 1 << 20;
      while (cap < out_len + n) cap *= 2;
      char *b = realloc(out_buf, cap);
      if (!b) { fprintf(stderr, "leakscope-bpf: out of memory\n"); exit(1); }
      out_buf = b;
      out_cap = cap;
    }
  }
  memcpy(out_buf + out_len, p, n);
  out_len += n;
}

static void put_rec(uint32_t type, const void *a, uint32_t alen, const void *b, uint32_t blen)
{
  uint32_t hdr[2] = { type, alen + blen };
  out_put(hdr, sizeof(hdr));
  if (alen) out_put(a, alen);
  if (blen) out_put(b, blen);
}

static void status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void status(const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= (int)sizeof(buf)) n = sizeof(buf) - 1;
  put_rec(2, buf, n, 0, 0);
  out_flush(0);
}

/* JSON-escapes s into out (for error messages and paths in STATUS records). */
static const char *jstr(const char *s, char *out, size_t cap)
{
  size_t o = 0;
  for (; *s && o + 7 < cap; s++) {
    unsigned char c = *s;
    if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = c; }
    else if (c < 0x20) o += snprintf(out + o, cap - o, "\\u%04x", c);
    else out[o++] = c;
  }
  out[o] = 0;
  return out;
}

/* Unwinding is the loader's main cost. Most calls repeat a few call paths, so unwinds are kept
 * per (pid, ip, caller) with the stack offset of every return address they found; a new sample
 * reuses one when each of those slots holds the same return address again (the same chain of
 * frames), else it is unwound afresh. One (pid, ip, caller) often has several chains (a pool
 * allocator's caller reached from different handlers), so a set holds UCACHE_WAYS of them;
 * a new one replaces the ways in turn. */
#define UCACHE_SETS 1024
#define UCACHE_WAYS 4
struct ucache_ent {
  uint32_t pid, n;
  uint64_t ip, caller;
  uint64_t pcs[MAX_PCS];
  int32_t offs[MAX_PCS]; /* offset of pcs[i] in the stack copy; -1 for pcs[0] (a register) */
};
struct ucache_set { struct ucache_ent way[UCACHE_WAYS]; uint32_t next; };
static struct ucache_set *ucache;
static uint64_t ucache_hits, ucache_misses, ucache_wrong;
static int verify_cache; /* LEAKSCOPE_UNWIND_VERIFY=1 */

/* Where the next return address lies in the copy at a given ip (its frame's layout is fixed
 * there), learnt from the first unwind at that ip. At a return probe inside a small helper
 * (ngx_palloc returning into ngx_pcalloc) the caller is the ip itself, and that helper's many
 * callers would all share one set: the return address found there keys the set instead. */
#define UOFF_SLOTS 4096
struct uoff_ent { uint32_t pid; int32_t off; uint64_t ip; };
static struct uoff_ent *uoff;

static struct uoff_ent *uoff_slot(const struct ls_event *e)
{
  if (!uoff) uoff = calloc(UOFF_SLOTS, sizeof(*uoff));
  if (!uoff) return NULL;
  /* the pid multiplied too: forked workers share their ips, and a pid in the low bits alone
   * would be shifted out, putting every worker's entries in one slot */
  return &uoff[(((e->regs[0] * 0x9e3779b97f4a7c15ull) ^ (e->pid * 0xd6e8feb86659fd93ull)) >> 40) % UOFF_SLOTS];
}

static uint64_t ucache_key(const struct ls_event *e, uint32_t slen)
{
  const struct uoff_ent *u = uoff_slot(e);
  if (!u) return e->caller;
  if (u->ip != e->regs[0] || u->pid != e->pid || u->off < 0 || (uint32_t)u->off + 8 > slen) return e->caller;
  uint64_t v;
  memcpy(&v, e->stack + u->off, 8);
  return v;
}

static void ucache_learn(const struct ls_event *e, int32_t off)
{
  struct uoff_ent *u = uoff_slot(e);
  if (!u) return;
  u->pid = e->pid; u->ip = e->regs[0]; u->off = off;
}

static struct ucache_set *ucache_set_of(uint32_t pid, uint64_t ip, uint64_t caller)
{
  if (!ucache) ucache = calloc(UCACHE_SETS, sizeof(*ucache));
  if (!ucache) return NULL;
  uint64_t h = (ip * 0x9e3779b97f4a7c15ull) ^ (caller * 0xc2b2ae3d27d4eb4full) ^ (pid * 0xd6e8feb86659fd93ull);
  return &ucache[(h >> 20) % UCACHE_SETS];
}

/* The cached chain of this sample, if its return-address slots still hold it. */
static int ucache_match(const struct ucache_ent *c, const struct ls_event *e, uint64_t key, uint32_t slen)
{
  if (c->n == 0 || c->pid != e->pid || c->ip != e->regs[0] || c->caller != key) return 0;
  for (uint32_t i = 0; i < c->n; i++) {
    int32_t o = c->offs[i];
    if (o < 0) continue;
    uint64_t v;
    if ((uint32_t)o + 8 > slen) return 0;
    memcpy(&v, e->stack + o, 8);
    if (v != c->pcs[i]) return 0;
  }
  return 1;
}

static int ucache_get(const struct ls_event *e, uint32_t slen, uint64_t *pcs)
{
  uint64_t key = ucache_key(e, slen);
  struct ucache_set *set = ucache_set_of(e->pid, e->regs[0], key);
  if (!set) return 0;
  for (int w = 0; w < UCACHE_WAYS; w++) {
    const struct ucache_ent *c = &set->way[w];
    if (!ucache_match(c, e, key, slen)) continue;
    memcpy(pcs, c->pcs, c->n * sizeof(pcs[0]));
    return c->n;
  }
  return 0;
}

static void ucache_put(const struct ls_event *e, uint32_t slen, const uint64_t *pcs, int n)
{
  if (n <= 0 || n > MAX_PCS) return;
  int32_t offs[MAX_PCS];
  int32_t next = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 && pcs[0] == e->regs[0]) { offs[0] = -1; continue; }
    int32_t found = -1;
    for (int32_t o = next; o + 8 <= (int32_t)slen; o += 8) {
      uint64_t v;
      memcpy(&v, e->stack + o, 8);
      if (v == pcs[i]) { found = o; break; }
    }
    /* the last pcs may lie beyond the copy (the unwinder stopped there): keep what was seen */
    if (found < 0) { if (i < 2) return; n = i; break; }
    offs[i] = found;
    next = found + 8;
  }
  if (offs[0] < 0 && n >= 2) ucache_learn(e, offs[1]);
  uint64_t key = ucache_key(e, slen);
  struct ucache_set *set = ucache_set_of(e->pid, e->regs[0], key);
  if (!set) return;
  struct ucache_ent *c = &set->way[set->next++ % UCACHE_WAYS];
  c->pid = e->pid; c->ip = e->regs[0]; c->caller = key; c->n = n;
  memcpy(c->pcs, pcs, n * sizeof(pcs[0]));
  memcpy(c->offs, offs, n * sizeof(offs[0]));
}

/* Distinct stacks, per pid: a CALL names its stack by id and the pcs cross the pipe once. Open
 * addressing over (pid, pcs); cleared (with a STACKS_RESET record) when full; ids never repeat. */
#define STAB_SLOTS (1u << 18)
#define STAB_MAX (STAB_SLOTS / 2)
struct stab_ent { uint32_t id, pid, n; uint64_t h; uint64_t *pcs; };
static struct stab_ent *stab;
static uint32_t stab_used, stab_next_id = 1;

static uint64_t stack_hash(uint32_t pid, const uint64_t *pcs, int n)
{
  uint64_t h = pid * 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
  for (int i = 0; i < n; i++) h = (h ^ pcs[i]) * 0xff51afd7ed558ccdull;
  return h ^ (h >> 29);
}

static void stab_clear(void)
{
  for (uint32_t i = 0; i < STAB_SLOTS; i++) { free(stab[i].pcs); stab[i] = (struct stab_ent){ 0 }; }
  stab_used = 0;
  put_rec(7, 0, 0, 0, 0);
}

static uint32_t stack_id(uint32_t pid, const uint64_t *pcs, int n)
{
  if (n <= 0) return 0;
  if (!stab && !(stab = calloc(STAB_SLOTS, sizeof(*stab)))) return 0;
  uint64_t h = stack_hash(pid, pcs, n);
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t i = 0; i < STAB_SLOTS; i++) {
      struct stab_ent *e = &stab[(h + i) & (STAB_SLOTS - 1)];
      if (e->id == 0) {
        if (stab_used >= STAB_MAX) break;
        uint64_t *copy = malloc(n * sizeof(pcs[0]));
        if (!copy) return 0;
        memcpy(copy, pcs, n * sizeof(pcs[0]));
        *e = (struct stab_ent){ stab_next_id++, pid, (uint32_t)n, h, copy };
        if (stab_next_id == 0) stab_next_id = 1;
        stab_used++;
        uint32_t hdr[2] = { e->id, pid };
        put_rec(6, hdr, sizeof(hdr), pcs, n * sizeof(pcs[0]));
        return e->id;
      }
      if (e->h == h && e->pid == pid && e->n == (uint32_t)n && !memcmp(e->pcs, pcs, n * sizeof(pcs[0]))) return e->id;
    }
    stab_clear();
  }
  return 0;
}

/* A NUL-terminated string at `addr` in process `pid`, read from user space: the probe could not
 * read it when its page was not mapped in yet (a process just forked has not touched its
 * program's read-only data: the probe cannot fault it in). Two pieces, so that a string ending
 * before an unmapped page is still read. */
static int read_str(uint32_t pid, uint64_t addr, char *out, size_t cap)
{
  if (!pid || !addr) return 0;
  size_t first = 4096 - (addr & 4095);
  if (first > cap - 1) first = cap - 1;
  struct iovec local[2] = { { out, first }, { out + first, cap - 1 - first } };
  struct iovec remote[2] = { { (void *)(uintptr_t)addr, first }, { (void *)(uintptr_t)(addr + first), cap - 1 - first } };
  ssize_t n = process_vm_readv(pid, local, cap - 1 > first ? 2 : 1, remote, cap - 1 > first ? 2 : 1, 0);
  if (n <= 0) return 0;
  out[n] = 0;
  return memchr(out, 0, n + 1) != NULL;
}

static int on_event(void *ctx, void *data, size_t size)
{
  const struct ls_event *e = data;
  if (size < sizeof(*e)) return 0;
  if (e->kind == LS_EV_CALL && !in_window(e->pid, e->ts)) return 0;
  if (e->kind != LS_EV_CALL) {
    if (e->kind == LS_EV_FORK && e->args[1]) {
      /* the child has every probe from the fork on: its calls count from there */
      int k = ready_slot((uint32_t)e->args[0], 1);
      if (k >= 0) { ready_tab[k].ts = e->ts; ready_tab[k].inherit = 1; ready_tab[k].partial = 0; }
    }
    struct { uint32_t kind, pid; uint64_t ts, a0, a1; } n = { e->kind, e->pid, e->ts, e->args[0], e->args[1] };
    put_rec(5, &n, sizeof(n), 0, 0);
    return 0;
  }
  struct ls_out o;
  memset(&o, 0, sizeof(o));
  o.kind = e->kind; o.spec = e->spec; o.pid = e->pid; o.tid = e->tid; o.ts = e->ts;
  memcpy(o.args, e->args, sizeof(o.args));
  o.ret = e->ret; o.deref = e->deref; o.walk_bytes = e->walk_bytes; o.walk_nodes = e->walk_nodes;
  memcpy(o.str, e->str, sizeof(o.str));
  int sa = e->spec < LS_MAX_SPECS ? spec_str_arg[e->spec] : -1;
  if (sa >= 0 && sa < 6 && !o.str[0] && e->args[sa]) {
    /* the process itself, or (gone already) the one it was forked from: a string in a file
     * mapping lies at the same address there */
    if (!read_str(e->pid, e->args[sa], o.str, sizeof(o.str)) && !read_str(e->owner, e->args[sa], o.str, sizeof(o.str))) o.str[0] = 0;
  }
  uint64_t pcs[MAX_PCS];
  int n = 0;
  uint32_t slen = e->stack_len;
  if (slen > size - sizeof(*e)) slen = size - sizeof(*e);
  if (unwind_fn && slen) {
    int r = ucache_get(e, slen, pcs);
    if (r > 0 && verify_cache) {
      /* debugging aid: unwind anyway and count disagreements */
      uint64_t fresh[MAX_PCS];
      int f = unwind_fn(e->pid, (const uint64_t *)e->regs, e->stack, slen, e->regs[1], fresh, MAX_PCS);
      if (f != r || memcmp(fresh, pcs, r * sizeof(pcs[0]))) ucache_wrong++;
    }
    if (r > 0) ucache_hits++;
    else {
      ucache_misses++;
      r = unwind_fn(e->pid, (const uint64_t *)e->regs, e->stack, slen, e->regs[1], pcs, MAX_PCS);
      if (r > 0) ucache_put(e, slen, pcs, r);
    }
    if (r > 0) {
      n = r;
      /* at a function's entry the unwinder's first pc is the probed function itself */
      if (!(e->flags & 1) && pcs[0] == e->regs[0]) { memmove(pcs, pcs + 1, (n - 1) * sizeof(pcs[0])); n--; }
    }
  }
  if (n == 0 && (e->caller || e->nfp)) {
    if (e->caller) pcs[n++] = e->caller;
    for (uint32_t i = 0; i < e->nfp && i < LS_MAX_FP && n < MAX_PCS; i++) pcs[n++] = e->fp[i];
  }
  o.stack = stack_id(e->pid, pcs, n);
  put_rec(1, &o, sizeof(o), 0, 0);
  return 0;
}

static uint64_t sum_percpu(int fd, uint32_t idx)
{
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  uint64_t vals[ncpu], s = 0;
  if (bpf_map_lookup_elem(fd, &idx, vals)) return 0;
  for (int i = 0; i < ncpu; i++) s += vals[i];
  return s;
}

static void emit_lost(void)
{
  int fd = bpf_map__fd(skel->maps.lost);
  uint64_t v[2] = { sum_percpu(fd, 0), sum_percpu(fd, 1) };
  put_rec(3, v, sizeof(v), 0, 0);
}

static void agg_dump(void)
{
  int fd = bpf_map__fd(skel->maps.agg_sites);
  struct agg_key k, nk;
  struct agg_val v;
  void *prev = NULL;
  while (bpf_map_get_next_key(fd, prev, &nk) == 0) {
    if (bpf_map_lookup_elem(fd, &nk, &v) == 0) {
      struct ls_agg_row r = { nk.pid, nk.spec, nk.site, v.live_count, v.live_bytes, v.total_count, v.total_bytes };
      put_rec(4, &r, sizeof(r), 0, 0);
    }
    k = nk;
    prev = &k;
  }
  int ufd = bpf_map__fd(skel->maps.agg_unknown_free);
  uint32_t pk, pnk;
  uint32_t *pp = NULL;
  uint64_t cnt;
  while (bpf_map_get_next_key(ufd, pp, &pnk) == 0) {
    if (bpf_map_lookup_elem(ufd, &pnk, &cnt) == 0) {
      struct ls_agg_row r = { pnk, 0xffffffffu, 0, 0, 0, cnt, 0 };
      put_rec(4, &r, sizeof(r), 0, 0);
    }
    pk = pnk;
    pp = &pk;
  }
  emit_lost();
  status("{\"aggdump\":true}");
}

/* Aggregate mode counts in the kernel from the first attached probe on, so the moment while a
 * process's probes were being attached one by one left entries that only some probes saw (a pool
 * whose create was seen but not its destroy looks leaked). Once every probe is attached ("ready
 * PID"), forget what that process counted so far: its tables start complete. Keys are collected
 * first and deleted after, as deleting while walking a hash map may skip entries. */
static void forget_keys(int fd, size_t ksz, uint32_t pid)
{
  size_t cap = 256, n = 0;
  unsigned char *keys = malloc(cap * ksz);
  unsigned char prev[32], cur[32];
  void *pp = NULL;
  if (!keys) return;
  while (bpf_map_get_next_key(fd, pp, cur) == 0) {
    if (*(uint32_t *)cur == pid) { /* every aggregate key starts with the pid */
      if (n == cap) {
        unsigned char *more = realloc(keys, cap * 2 * ksz);
        if (!more) break;
        keys = more;
        cap *= 2;
      }
      memcpy(keys + n++ * ksz, cur, ksz);
    }
    memcpy(prev, cur, ksz);
    pp = prev;
  }
  for (size_t i = 0; i < n; i++) bpf_map_delete_elem(fd, keys + i * ksz);
  free(keys);
}

static void agg_forget(uint32_t pid)
{
  forget_keys(bpf_map__fd(skel->maps.agg_live), sizeof(struct live_key), pid);
  forget_keys(bpf_map__fd(skel->maps.agg_sites), sizeof(struct agg_key), pid);
  forget_keys(bpf_map__fd(skel->maps.agg_unknown_free), sizeof(uint32_t), pid);
}

/* Inherited probes. A uprobe opened through the perf "uprobe" PMU cannot be inherited: the
 * kernel re-reads its path from the user memory of the forking process, and the target's fork()
 * fails with EFAULT. A uprobe event made in tracefs (uprobe_events) and opened as a tracepoint
 * with perf's `inherit` is: every process the target forks afterwards has the probe from its
 * first instruction (as `perf record` follows children). The BPF program is not attached to
 * that inherited event, though: a child's copy of it carries the program too, and when the child
 * exits the kernel takes the program off the probe for every process (the program list is the
 * probe's, shared). So each probe has two perf events on its tracefs event: one, not inherited,
 * runs the program; the other, inherited and disabled (it never counts), only keeps the probe in
 * every process forked from the target — the program then runs there too, and the BPF side
 * keeps the hits of the processes that inherited all the probes (`inherits`).
 * The events are named after this loader's pid (leakscope_PID/pN), removed when detached, and
 * those of a loader that died are removed by the next one. */
static char tfs_root[64];
static char tfs_group[32];
static unsigned tfs_seq;

static int tfs_init(void)
{
  const char *roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
  for (int i = 0; i < 2; i++) {
    char p[128];
    snprintf(p, sizeof(p), "%s/uprobe_events", roots[i]);
    if (access(p, W_OK) == 0) {
      snprintf(tfs_root, sizeof(tfs_root), "%s", roots[i]);
      snprintf(tfs_group, sizeof(tfs_group), "leakscope_%d", (int)getpid());
      return 1;
    }
  }
  return 0;
}

static int tfs_write(const char *cmd)
{
  char p[128];
  snprintf(p, sizeof(p), "%s/uprobe_events", tfs_root);
  int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, cmd, strlen(cmd));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

static int tfs_remove(const char *name)
{
  char cmd[96];
  snprintf(cmd, sizeof(cmd), "-:%s/%s\n", tfs_group, name);
  return tfs_write(cmd);
}

/* Removes the events of loaders that are gone (killed before they could clean up). */
static void tfs_sweep(void)
{
  char p[128], line[4096];
  snprintf(p, sizeof(p), "%s/uprobe_events", tfs_root);
  FILE *f = fopen(p, "re");
  if (!f) return;
  char (*stale)[80] = NULL;
  size_t n = 0, cap = 0;
  while (fgets(line, sizeof(line), f)) {
    int pid;
    char name[40];
    if (sscanf(line, "%*c:leakscope_%d/%39[A-Za-z0-9_]", &pid, name) != 2) continue;
    char comm[64] = "", cp[64];
    snprintf(cp, sizeof(cp), "/proc/%d/comm", pid);
    FILE *c = fopen(cp, "re");
    if (c) { if (!fgets(comm, sizeof(comm), c)) comm[0] = 0; fclose(c); }
    if (!strncmp(comm, "leakscope-bpf", 13)) continue; /* a live loader's */
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      void *m = realloc(stale, cap * sizeof(*stale));
      if (!m) break;
      stale = m;
    }
    snprintf(stale[n++], sizeof(stale[0]), "-:leakscope_%d/%s\n", pid, name);
  }
  fclose(f);
  for (size_t i = 0; i < n; i++) tfs_write(stale[i]);
  free(stale);
}

/* Attaches `prog` at path:off in `pid` so that the processes it forks inherit the probe.
 * Returns the link, or NULL (errno set) for the caller to fall back on a PMU uprobe. */
static int perf_tp_open(long id, int pid, int inherit)
{
  struct perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.type = PERF_TYPE_TRACEPOINT;
  a.config = id;
  a.inherit = inherit;
  a.disabled = inherit; /* the inherited one only carries the probe into children */
  return syscall(__NR_perf_event_open, &a, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static struct bpf_link *attach_inherited(struct bpf_program *prog, int pid, const char *path, uint64_t off, int ret, uint64_t cookie, char *name, size_t namecap, int *inh_fd)
{
  if (!tfs_root[0] || strpbrk(path, " \t\n")) { errno = EINVAL; return NULL; }
  snprintf(name, namecap, "p%u", tfs_seq++);
  char cmd[4200];
  int n = snprintf(cmd, sizeof(cmd), "%c:%s/%s %s:0x%llx\n", ret ? 'r' : 'p', tfs_group, name, path, (unsigned long long)off);
  if (n < 0 || n >= (int)sizeof(cmd)) { errno = ENAMETOOLONG; return NULL; }
  int err = tfs_write(cmd);
  if (err) { errno = -err; return NULL; }
  char idp[256];
  snprintf(idp, sizeof(idp), "%s/events/%s/%s/id", tfs_root, tfs_group, name);
  FILE *f = fopen(idp, "re");
  long id = -1;
  if (f) { if (fscanf(f, "%ld", &id) != 1) id = -1; fclose(f); }
  if (id < 0) { tfs_remove(name); errno = ENOENT; return NULL; }
  int ifd = perf_tp_open(id, pid, 1);
  if (ifd < 0) { int e = errno; tfs_remove(name); errno = e; return NULL; }
  int pfd = perf_tp_open(id, pid, 0);
  if (pfd < 0) { int e = errno; close(ifd); tfs_remove(name); errno = e; return NULL; }
  LIBBPF_OPTS(bpf_perf_event_opts, po, .bpf_cookie = cookie);
  struct bpf_link *l = bpf_program__attach_perf_event_opts(prog, pfd, &po);
  if (!l) { int e = errno; close(pfd); close(ifd); tfs_remove(name); errno = e; return NULL; }
  *inh_fd = ifd;
  return l;
}

static void add_link(int pid, struct bpf_link *l)
{
  if (nlinks == caplinks) {
    caplinks = caplinks ? caplinks * 2 : 64;
    links = realloc(links, caplinks * sizeof(*links));
    if (!links) { fprintf(stderr, "leakscope-bpf: out of memory\n"); exit(1); }
  }
  links[nlinks++] = (struct link_ent){ pid, l, "", -1 };
}

/* tracefs events whose removal failed (still busy): retried at exit */
static char (*tfs_left)[32];
static size_t ntfs_left;

static pthread_mutex_t tfs_left_mu = PTHREAD_MUTEX_INITIALIZER;

static void destroy_link(struct link_ent *e)
{
  bpf_link__destroy(e->link);
  if (e->inh_fd >= 0) close(e->inh_fd);
  if (!e->tfs[0] || tfs_remove(e->tfs) == 0) return;
  pthread_mutex_lock(&tfs_left_mu);
  void *m = realloc(tfs_left, (ntfs_left + 1) * sizeof(*tfs_left));
  if (m) {
    tfs_left = m;
    snprintf(tfs_left[ntfs_left++], sizeof(tfs_left[0]), "%s", e->tfs);
  }
  pthread_mutex_unlock(&tfs_left_mu);
}

/* Detaching one uprobe waits in the kernel (0.09-0.18 s for a third of them by strace here, a
 * grace period each), so links are destroyed by a few threads from a queue: a process's links
 * when it exits, off the loop (which must go on draining the ring), and every link at quit, in
 * parallel (one at a time, stopping took seconds). */
#define DETACHERS 8
static pthread_t detachers[DETACHERS];
static int ndetachers;
static pthread_mutex_t dq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dq_cv = PTHREAD_COND_INITIALIZER;
static struct link_ent *dq;
static size_t dq_head, dq_len, dq_cap;
static int dq_closing;

static void *detacher(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&dq_mu);
  for (;;) {
    while (dq_head == dq_len && !dq_closing) pthread_cond_wait(&dq_cv, &dq_mu);
    if (dq_head == dq_len) break;
    struct link_ent e = dq[dq_head++];
    if (dq_head == dq_len) dq_head = dq_len = 0;
    pthread_mutex_unlock(&dq_mu);
    destroy_link(&e);
    pthread_mutex_lock(&dq_mu);
  }
  pthread_mutex_unlock(&dq_mu);
  return NULL;
}

/* Queues a link for the detachers (started on first use); destroys it here if none can run. */
static void detach_later(struct link_ent *e)
{
  if (!ndetachers) {
    /* signals stay the main thread's (SIGTERM must reach the loop's poll) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (ndetachers < DETACHERS && pthread_create(&detachers[ndetachers], NULL, detacher, NULL) == 0) ndetachers++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_mutex_lock(&dq_mu);
  int queued = 0;
  if (ndetachers && dq_len == dq_cap) {
    size_t cap = dq_cap ? dq_cap * 2 : 64;
    void *m = realloc(dq, cap * sizeof(*dq));
    if (m) { dq = m; dq_cap = cap; }
  }
  if (ndetachers && dq_len < dq_cap) {
    dq[dq_len++] = *e;
    queued = 1;
    pthread_cond_signal(&dq_cv);
  }
  pthread_mutex_unlock(&dq_mu);
  if (!queued) destroy_link(e);
}

/* Waits until every queued link is destroyed and the detachers are gone. */
static void detach_finish(void)
{
  pthread_mutex_lock(&dq_mu);
  dq_closing = 1;
  pthread_cond_broadcast(&dq_cv);
  pthread_mutex_unlock(&dq_mu);
  for (int i = 0; i < ndetachers; i++) pthread_join(detachers[i], NULL);
  ndetachers = 0;
}

static void drop_pid(int pid)
{
  size_t w = 0;
  for (size_t i = 0; i < nlinks; i++) {
    if (links[i].pid == pid) detach_later(&links[i]);
    else links[w++] = links[i];
  }
  nlinks = w;
  uint32_t k = pid;
  bpf_map_delete_elem(bpf_map__fd(skel->maps.traced), &k);
  bpf_map_delete_elem(bpf_map__fd(skel->maps.inherits), &k);
  if (unwind_forget_fn) unwind_forget_fn(pid);
}

/* Splits a line on TABs in place. */
static int split(char *line, char **f, int max)
{
  int n = 0;
  char *p = line;
  while (n < max) {
    f[n++] = p;
    char *t = strchr(p, '\t');
    if (!t) break;
    *t = 0;
    p = t + 1;
  }
  return n;
}

static long num(const char *s) { return strtol(s, NULL, 0); }

static void do_probe(char **f, int n)
{
  char e1[512], e2[512], e3[256];
  if (n < 5) { status("{\"error\":\"probe: expected 5 fields\"}"); return; }
  int idx = num(f[1]), pid = num(f[2]);
  const char *path = f[3], *sym = f[4];
  if (idx < 0 || idx >= LS_MAX_SPECS) { status("{\"error\":\"probe: bad spec index\"}"); return; }
  int ret_only = (spec_flags[idx] & LS_F_RET_ONLY) != 0;
  /* bytes into the function: past flag-setting instructions the kernel would single-step
   * (chosen by the caller from the binary; the arguments and sp are still the entry's there) */
  long skip = n >= 6 ? num(f[5]) : 0;
  if (skip < 0 || skip > 32) skip = 0;
  /* the function's offset in the file, found by the caller (symbols/elf.ts): no lookup here */
  if (n < 7 || num(f[6]) <= 0) { status("{\"error\":\"probe: expected the function's file offset\"}"); return; }
  uint64_t off = (uint64_t)num(f[6]);
  /* the BPF side traces a hit for this pid, and for the processes that inherited the probe */
  uint64_t cookie = (uint64_t)idx | (uint64_t)(uint32_t)pid << 32;
  int slot = ready_slot(pid, 1);
  int inherit = slot >= 0 && ready_tab[slot].inherit;
  char tfs[32] = "";
  int inh_fd = -1;
  struct bpf_link *l = NULL;
  if (inherit) {
    l = attach_inherited(ret_only ? skel->progs.ls_return : skel->progs.ls_entry, pid, path, off + skip, ret_only, cookie, tfs, sizeof(tfs), &inh_fd);
    if (!l) { ready_tab[slot].partial = 1; tfs[0] = 0; }
  }
  if (!l) {
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie, .retprobe = ret_only);
    l = bpf_program__attach_uprobe_opts(ret_only ? skel->progs.ls_return : skel->progs.ls_entry, pid, path, off + skip, &uo);
  }
  if (!l) {
    int err = errno;
    status("{\"probe\":%d,\"pid\":%d,\"ok\":false,\"path\":\"%s\",\"symbol\":\"%s\",\"error\":\"%s\"}", idx, pid,
           jstr(path, e1, sizeof(e1)), jstr(sym, e2, sizeof(e2)), jstr(strerror(err), e3, sizeof(e3)));
    return;
  }
  add_link(pid, l);
  snprintf(links[nlinks - 1].tfs, sizeof(links[0].tfs), "%s", tfs);
  links[nlinks - 1].inh_fd = inh_fd;
  if (!(spec_flags[idx] & (LS_F_ENTRY_EMIT | LS_F_RET_ONLY))) {
    struct bpf_link *r = NULL;
    tfs[0] = 0;
    inh_fd = -1;
    if (inherit && tfs_root[0] && links[nlinks - 1].tfs[0]) {
      r = attach_inherited(skel->progs.ls_return, pid, path, off + skip, 1, cookie, tfs, sizeof(tfs), &inh_fd);
      if (!r) { ready_tab[slot].partial = 1; tfs[0] = 0; }
    } else if (inherit) ready_tab[slot].partial = 1;
    if (!r) {
      LIBBPF_OPTS(bpf_uprobe_opts, ro, .bpf_cookie = cookie, .retprobe = true);
      r = bpf_program__attach_uprobe_opts(skel->progs.ls_return, pid, path, off + skip, &ro);
    }
    if (!r) {
      int err = errno;
      status("{\"probe\":%d,\"pid\":%d,\"ok\":false,\"path\":\"%s\",\"symbol\":\"%s\",\"error\":\"return probe: %s\"}", idx, pid,
             jstr(path, e1, sizeof(e1)), jstr(sym, e2, sizeof(e2)), jstr(strerror(err), e3, sizeof(e3)));
      return;
    }
    add_link(pid, r);
    snprintf(links[nlinks - 1].tfs, sizeof(links[0].tfs), "%s", tfs);
    links[nlinks - 1].inh_fd = inh_fd;
  }
  status("{\"probe\":%d,\"pid\":%d,\"ok\":true,\"inherited\":%s}", idx, pid, links[nlinks - 1].tfs[0] ? "true" : "false");
}

static void do_spec(char **f, int n)
{
  if (n < 22) { status("{\"error\":\"spec: expected 22 fields\"}"); return; }
  int idx = num(f[1]);
  if (idx < 0 || idx >= LS_MAX_SPECS) { status("{\"error\":\"spec: bad index\"}"); return; }
  struct ls_spec s;
  memset(&s, 0, sizeof(s));
  s.flags = num(f[2]); s.role = num(f[3]);
  s.addr_src = num(f[4]); s.size_src = num(f[5]); s.old_src = num(f[6]);
  s.deref_arg = num(f[7]); s.str_arg = num(f[8]); s.walk_arg = num(f[9]);
  for (int k = 0; k < 2; k++) {
    char **w = f + 10 + 6 * k;
    s.walk[k] = (struct ls_walk){ num(w[0]), num(w[1]), num(w[2]), num(w[3]), num(w[4]), num(w[5]) };
  }
  s.tag_off = n >= 23 ? num(f[22]) : -1;
  uint32_t key = idx;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.specs), &key, &s, BPF_ANY)) { status("{\"error\":\"spec: map update failed\"}"); return; }
  spec_flags[idx] = s.flags;
  spec_str_arg[idx] = s.str_arg;
  status("{\"spec\":%d,\"ok\":true}", idx);
}

/* Returns 0 to go on, 1 to quit. */
static int command(char *line)
{
  char *f[32];
  int n = split(line, f, 32);
  if (!strcmp(f[0], "spec")) do_spec(f, n);
  else if (!strcmp(f[0], "probe")) do_probe(f, n);
  else if (!strcmp(f[0], "trace") && n >= 2) {
    uint32_t k = num(f[1]), root;
    uint8_t one = LS_TRACED;
    int slot = ready_slot(k, 1);
    if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.inherits), &k, &root) == 0) {
      /* it inherited its probes at fork (its notification was lost if it is not ready yet) */
      if (slot >= 0 && !ready_tab[slot].ts) ready_tab[slot].ts = mono_ns();
      status("{\"trace\":%u,\"ok\":true,\"inherited\":true,\"root\":%u}", k, root);
    } else {
      if (slot >= 0) { ready_tab[slot].inherit = n >= 3 && num(f[2]) == 1; ready_tab[slot].partial = 0; ready_tab[slot].ts = 0; }
      bpf_map_update_elem(bpf_map__fd(skel->maps.traced), &k, &one, BPF_ANY);
      status("{\"trace\":%u,\"ok\":true,\"inherited\":false}", k);
    }
  } else if (!strcmp(f[0], "ready") && n >= 2) {
    uint32_t pid = num(f[1]);
    int k = ready_slot(pid, 1);
    if (k >= 0) ready_tab[k].ts = mono_ns();
    if (skel->rodata->agg_mode) agg_forget(pid);
    /* from now on the processes it forks are traced through the probes they inherit */
    int inherits = k >= 0 && ready_tab[k].inherit && !ready_tab[k].partial;
    uint8_t v = LS_TRACED_INHERIT;
    if (inherits && bpf_map_update_elem(bpf_map__fd(skel->maps.traced), &pid, &v, BPF_EXIST)) inherits = 0;
    status("{\"ready\":%u,\"ok\":%s,\"inherits\":%s}", pid, k >= 0 ? "true" : "false", inherits ? "true" : "false");
  } else if (!strcmp(f[0], "untrace") && n >= 2) {
    drop_pid(num(f[1]));
    status("{\"untrace\":%ld,\"ok\":true}", num(f[1]));
  } else if (!strcmp(f[0], "aggdump")) agg_dump();
  else if (!strcmp(f[0], "quit")) return 1;
  else if (f[0][0]) status("{\"error\":\"unknown command\"}");
  return 0;
}

static int libbpf_log(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  ls_verify_libbpf(lvl, fmt, ap2);
  va_end(ap2);
  if (lvl == LIBBPF_DEBUG) return 0;
  if (getenv("LEAKSCOPE_BPF_VERBOSE")) return vfprintf(stderr, fmt, ap);
  return 0;
}

static void on_signal(int sig) { stop = 1; }

/* `verify`: loads every configuration `attach` and the bench can choose (the read-only
 * switches are fixed at load, each combination a different program for the verifier) and
 * prints each program's verified instructions and stack as JSON lines (ls_verify.h). */
static int verify_all(void)
{
  static const struct { const char *name; __u32 stack, agg, bare; } cfgs[] = {
    { "events", 0, 0, 0 }, { "events,stack", LS_MAX_STACK, 0, 0 }, { "aggregate", 0, 1, 0 },
    { "aggregate,stack", LS_MAX_STACK, 1, 0 }, { "bare", 0, 0, 1 },
  };
  int rc = 0;
  libbpf_set_print(libbpf_log);
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    struct leakscope *s = leakscope__open();
    if (!s) { printf("{\"loader\":\"leakscope-bpf\",\"config\":\"%s\",\"error\":\"cannot open the BPF object\"}\n", cfgs[i].name); return 1; }
    s->rodata->stack_bytes = cfgs[i].stack;
    s->rodata->agg_mode = cfgs[i].agg;
    s->rodata->bare = cfgs[i].bare;
    struct ls_verify v;
    ls_verify_prepare(&v, s->obj, LS_VERIFY_STATS);
    int err = leakscope__load(s);
    if (err) {
      char why[1024];
      ls_verify_reason(&v, err < 0 ? -err : errno, why, sizeof why);
      printf("{\"loader\":\"leakscope-bpf\",\"config\":\"%s\",\"error\":", cfgs[i].name);
      ls_json_str(stdout, why);
      printf("}\n");
      rc = 1;
    } else ls_verify_print(&v, s->obj, stdout, "leakscope-bpf", cfgs[i].name);
    leakscope__destroy(s);
    ls_verify_free(&v);
  }
  return rc;
}

/* The cost of one probe hit on this machine, for the log's estimate of what the probes cost a
 * traced process (src/attach/governor.ts): a function of the loader's own is called HIT_CALLS
 * times bare, then with ls_entry attached to it as a uprobe in this process only; the best of a
 * few rounds of each, the difference over HIT_CALLS. The cookie makes the program return at
 * once: owner 0 is no process's tgid and the loader inherited no probe (wanted() is false),
 * and the spec index is out of range besides: the hit is the trap and the program's entry,
 * nothing emitted. The calls take ~2 ms at 0.5 µs a hit; the attach ~10-30 ms (the kernel
 * waits for an RCU grace period at every uprobe registration); the detach, ~100 ms more (a
 * grace period again), is left to a thread. Returns 0 when it cannot tell (no figure then). */
#define HIT_CALLS 1000
#define HIT_ROUNDS 4

/* It opens with a push, which the kernel emulates at a uprobe, as at the probes leakscope
 * places (src/attach/probe-point.ts): an instruction it single-steps costs a second trap
 * (~17 µs a hit here against ~0.45). */
void ls_hit_calibrate(void);
#if defined(__x86_64__)
__asm__(".text\n.globl ls_hit_calibrate\n.type ls_hit_calibrate,@function\n"
        "ls_hit_calibrate:\n\tpush %rbp\n\tpop %rbp\n\tret\n.size ls_hit_calibrate,.-ls_hit_calibrate\n");
#else
__attribute__((noinline, used)) void ls_hit_calibrate(void) { __asm__ volatile("" ::: "memory"); }
#endif

static uint64_t hit_best(void)
{
  /* through a volatile pointer: the compiler can neither inline nor drop the calls */
  void (*volatile fn)(void) = ls_hit_calibrate;
  uint64_t best = UINT64_MAX;
  for (int r = 0; r < HIT_ROUNDS; r++) {
    uint64_t t0 = mono_ns();
    for (int i = 0; i < HIT_CALLS; i++) fn();
    uint64_t t = mono_ns() - t0;
    if (t < best) best = t;
  }
  return best;
}

/* The offset in the loader's file of `addr`, from the executable mapping that holds it. */
static long self_offset(uintptr_t addr)
{
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return -1;
  char line[512];
  long off = -1;
  while (fgets(line, sizeof(line), f)) {
    unsigned long lo, hi, foff;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perms, &foff) != 4) continue;
    if (addr >= lo && addr < hi && perms[2] == 'x') { off = (long)(addr - lo + foff); break; }
  }
  fclose(f);
  return off;
}

static pthread_t hit_detacher;
static int hit_detaching;

static void *detach_link(void *l)
{
  bpf_link__destroy(l);
  return NULL;
}

static uint64_t hit_cost_ns(void)
{
  long off = self_offset((uintptr_t)ls_hit_calibrate);
  if (off <= 0) return 0;
  uint64_t bare_ns = hit_best();
  LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = (uint64_t)UINT32_MAX);
  struct bpf_link *l = bpf_program__attach_uprobe_opts(skel->progs.ls_entry, getpid(), "/proc/self/exe", off, &uo);
  if (!l) return 0;
  uint64_t probed_ns = hit_best();
  /* signals stay the main thread's (SIGTERM must reach the loop's poll) */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  if (pthread_create(&hit_detacher, NULL, detach_link, l) == 0) hit_detaching = 1;
  else bpf_link__destroy(l);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (probed_ns <= bare_ns) return 0;
  return (probed_ns - bare_ns + HIT_CALLS / 2) / HIT_CALLS;
}

int main(int argc, char **argv)
{
  if (argc == 2 && !strcmp(argv[1], "verify")) return verify_all();
  if (argc < 2 || strcmp(argv[1], "run")) {
    fprintf(stderr, "usage: leakscope-bpf run [--mode events|aggregate] [--stack-bytes N] [--ringbuf-mb N] [--unwind LIB]\n"
                    "       leakscope-bpf verify\n");
    return 2;
  }
  const char *mode = "events", *unwind_lib = NULL;
  long stack_bytes = 0, ring_mb = 8;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
    else if (!strcmp(argv[i], "--stack-bytes")) stack_bytes = num(argv[i + 1]);
    else if (!strcmp(argv[i], "--ringbuf-mb")) ring_mb = num(argv[i + 1]);
    else if (!strcmp(argv[i], "--unwind")) unwind_lib = argv[i + 1];
  }
  if (stack_bytes < 0 || stack_bytes > LS_MAX_STACK) stack_bytes = LS_MAX_STACK;
  if (ring_mb < 1 || ring_mb > 1024) ring_mb = 8;
  /* ring buffer size must be a power of two */
  uint32_t ring = 1u << 20;
  while (ring < (uint64_t)ring_mb << 20 && ring < (1u << 30)) ring <<= 1;

  libbpf_set_print(libbpf_log);
  verify_cache = getenv("LEAKSCOPE_UNWIND_VERIFY") != NULL;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  if (unwind_lib) {
    void *h = dlopen(unwind_lib, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      unwind_fn = (ls_unwind_fn)dlsym(h, "ls_unwind");
      unwind_forget_fn = (ls_unwind_forget_fn)dlsym(h, "ls_unwind_forget");
    }
    if (!unwind_fn) fprintf(stderr, "leakscope-bpf: unwinder %s not usable (%s); using caller + frame pointers\n", unwind_lib, dlerror());
  }

  skel = leakscope__open();
  if (!skel) { fprintf(stderr, "leakscope-bpf: cannot open the BPF object: %s\n", strerror(errno)); return 1; }
  skel->rodata->stack_bytes = stack_bytes;
  skel->rodata->agg_mode = !strcmp(mode, "aggregate");
  /* benchmarks only: the same probes with programs that do nothing, to measure the floor */
  skel->rodata->bare = getenv("LEAKSCOPE_BPF_BARE") != NULL;
  bpf_map__set_max_entries(skel->maps.events, ring);
  struct ls_verify lv;
  ls_verify_prepare(&lv, skel->obj, LS_VERIFY_ON_FAILURE);
  int lerr = leakscope__load(skel);
  if (lerr) {
    char why[1024];
    ls_verify_reason(&lv, lerr < 0 ? -lerr : errno, why, sizeof why);
    fprintf(stderr, "leakscope-bpf: cannot load the BPF programs: %s\n", why);
    return 1;
  }
  ls_verify_free(&lv);
  /* fork/exit notifications; uprobes are attached per process on command */
  struct bpf_link *lf = bpf_program__attach(skel->progs.ls_fork);
  struct bpf_link *le = bpf_program__attach(skel->progs.ls_exit);
  if (!lf || !le) fprintf(stderr, "leakscope-bpf: fork/exit tracepoints unavailable; relying on /proc polling\n");

  /* without tracefs, processes forked while traced are attached after the fork: the ready
   * line's "inheritance" says so, and leakscope words it */
  int have_tfs = tfs_init();
  if (have_tfs) tfs_sweep();

  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
  if (!rb) { fprintf(stderr, "leakscope-bpf: cannot create the ring buffer reader\n"); return 1; }
  /* what the verifier walked per program: kept under half its limit (a test checks) */
  struct bpf_program *progs[] = { skel->progs.ls_entry, skel->progs.ls_return, skel->progs.ls_fork, skel->progs.ls_exit };
  char insns[256];
  int io = 0;
  for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(bpf_program__fd(progs[i]), &info, &len)) continue;
    io += snprintf(insns + io, sizeof(insns) - io, "%s\"%s\":%u", io ? "," : "", bpf_program__name(progs[i]), info.verified_insns);
  }
  insns[io] = 0;
  char hit[32] = "";
  uint64_t hit_ns = hit_cost_ns();
  if (hit_ns) snprintf(hit, sizeof(hit), ",\"hitNs\":%llu", (unsigned long long)hit_ns);
  status("{\"ready\":true,\"mode\":\"%s\",\"unwinder\":%s,\"inheritance\":%s,\"verifiedInsns\":{%s}%s}", skel->rodata->agg_mode ? "aggregate" : "events", unwind_fn ? "true" : "false", have_tfs ? "true" : "false", insns, hit);

  char *line = NULL;
  size_t linecap = 0, linelen = 0;
  char inbuf[4096];
  struct pollfd pfd[3] = { { .fd = 0, .events = POLLIN }, { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN }, { .fd = 1, .events = 0 } };
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
  struct timespec last_lost = { 0 };
  int quit = 0;
  /* the BPF side does not wake us per event (BPF_RB_NO_WAKEUP): drain every 5 ms while events
   * flow; while none come (no probe hit: an idle server, or no probe at all), wait longer, up to
   * 40 ms (the ring holds far more than 40 ms of events; fork/exit notifications and commands
   * wake us at once): 200 wake-ups a second cost an idle target's host ~1% of a core */
  int wait_ms = 5;
  while (!stop && !quit) {
    int pr = poll(pfd, 3, wait_ms);
    if (pr < 0 && errno != EINTR) break;
    int got = ring_buffer__consume(rb);
    wait_ms = got > 0 ? 5 : wait_ms < 40 ? wait_ms * 2 : 40;
    if (pfd[0].revents & (POLLIN | POLLHUP)) {
      ssize_t r = read(0, inbuf, sizeof(inbuf));
      if (r <= 0) quit = 1;
      for (ssize_t i = 0; i < r; i++) {
        if (linelen + 1 >= linecap) { linecap = linecap ? linecap * 2 : 1024; line = realloc(line, linecap); if (!line) return 1; }
        if (inbuf[i] == '\n') { line[linelen] = 0; if (command(line)) quit = 1; linelen = 0; }
        else line[linelen++] = inbuf[i];
      }
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != last_lost.tv_sec) { emit_lost(); last_lost = now; }
    out_flush(0);
    pfd[2].events = out_len ? POLLOUT : 0;
  }
  /* detach everything, then drain what the probes already queued */
  stop_ts = mono_ns();
  for (size_t i = 0; i < nlinks; i++) detach_later(&links[i]);
  nlinks = 0;
  detach_finish();
  for (size_t i = 0; i < ntfs_left; i++) tfs_remove(tfs_left[i]);
  ring_buffer__consume(rb);
  emit_lost();
  status("{\"done\":true,\"unwindCacheHits\":%llu,\"unwindCacheMisses\":%llu}", (unsigned long long)ucache_hits, (unsigned long long)ucache_misses);
  if (verify_cache) fprintf(stderr, "leakscope-bpf: unwind cache: %llu hits, %llu misses, %llu hits that a fresh unwind disagrees with\n",
                            (unsigned long long)ucache_hits, (unsigned long long)ucache_misses, (unsigned long long)ucache_wrong);
  out_flush(1);
  ring_buffer__free(rb);
  bpf_link__destroy(lf);
  bpf_link__destroy(le);
  if (hit_detaching) pthread_join(hit_detacher, NULL);
  leakscope__destroy(skel);
  return 0;
}
