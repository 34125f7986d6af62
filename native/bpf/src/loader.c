/* leakscope-bpf: loads leakscope's uprobe programs and attaches them to chosen processes.
 *
 * Driven by `leakscope attach` (src/attach/loader.ts) over pipes:
 *   stdin  (text, one command per line, fields separated by TABs; no shell, nothing evaluated):
 *     spec IDX FLAGS ROLE ADDR SIZE OLD DEREF STR WALK  <6 walk0 fields> <6 walk1 fields>
 *     probe IDX PID PATH SYMBOL      attach spec IDX to PATH:SYMBOL in process PID
 *     trace PID / untrace PID        follow forks and exits of PID / stop (drops its probes)
 *     ready PID                      every probe of PID is attached: its calls count from now
 *     aggdump                        emit the aggregate tables
 *     quit
 *   stdout (binary records: u32 type, u32 payload length, payload):
 *     1 CALL    struct ls_out (its stack: the id of a STACK record sent before it, 0 = none)
 *     2 STATUS  a JSON object, one line of text
 *     3 LOST    u64 ring-buffer drops, u64 aggregate-map drops (totals so far)
 *     4 AGG     struct ls_agg_row
 *     5 NOTIFY  u32 kind (fork/exit), u32 pid, u64 ts, u64 a0
 *     6 STACK   u32 id, u32 pid, u64 pcs[] (caller first): sent once per distinct (pid, pcs)
 *     7 STACKS_RESET  the stack table was full and starts afresh: forget every stack id
 * Also: `leakscope-bpf symbols PATH SYM...` prints the SYMs defined in PATH, one per line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

struct link_ent { int pid; struct bpf_link *link; };

static struct leakscope *skel;
static struct link_ent *links;
static size_t nlinks, caplinks;
static ls_unwind_fn unwind_fn;
static ls_unwind_forget_fn unwind_forget_fn;
static uint32_t spec_flags[LS_MAX_SPECS];
static volatile sig_atomic_t stop;

/* Calls count only between the moment every probe of a process is attached ("ready PID") and
 * the moment detaching starts: outside that window some probes miss what others see (a pool
 * created with no destroy probe yet would look leaked). Open addressing, pid 0 = empty. */
#define READY_SLOTS 16384
static struct { uint32_t pid; uint64_t ts; } ready_tab[READY_SLOTS];
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

static int on_event(void *ctx, void *data, size_t size)
{
  const struct ls_event *e = data;
  if (size < sizeof(*e)) return 0;
  if (e->kind == LS_EV_CALL && !in_window(e->pid, e->ts)) return 0;
  if (e->kind != LS_EV_CALL) {
    struct { uint32_t kind, pid; uint64_t ts, a0; } n = { e->kind, e->pid, e->ts, e->args[0] };
    put_rec(5, &n, sizeof(n), 0, 0);
    return 0;
  }
  struct ls_out o;
  memset(&o, 0, sizeof(o));
  o.kind = e->kind; o.spec = e->spec; o.pid = e->pid; o.tid = e->tid; o.ts = e->ts;
  memcpy(o.args, e->args, sizeof(o.args));
  o.ret = e->ret; o.deref = e->deref; o.walk_bytes = e->walk_bytes; o.walk_nodes = e->walk_nodes;
  memcpy(o.str, e->str, sizeof(o.str));
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

static void add_link(int pid, struct bpf_link *l)
{
  if (nlinks == caplinks) {
    caplinks = caplinks ? caplinks * 2 : 64;
    links = realloc(links, caplinks * sizeof(*links));
    if (!links) { fprintf(stderr, "leakscope-bpf: out of memory\n"); exit(1); }
  }
  links[nlinks++] = (struct link_ent){ pid, l };
}

static void drop_pid(int pid)
{
  size_t w = 0;
  for (size_t i = 0; i < nlinks; i++) {
    if (links[i].pid == pid) bpf_link__destroy(links[i].link);
    else links[w++] = links[i];
  }
  nlinks = w;
  uint32_t k = pid;
  bpf_map_delete_elem(bpf_map__fd(skel->maps.traced), &k);
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
  LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = sym, .bpf_cookie = idx, .retprobe = ret_only);
  struct bpf_link *l = bpf_program__attach_uprobe_opts(ret_only ? skel->progs.ls_return : skel->progs.ls_entry, pid, path, skip, &uo);
  if (!l) {
    int err = errno;
    status("{\"probe\":%d,\"pid\":%d,\"ok\":false,\"path\":\"%s\",\"symbol\":\"%s\",\"error\":\"%s\"}", idx, pid,
           jstr(path, e1, sizeof(e1)), jstr(sym, e2, sizeof(e2)), jstr(strerror(err), e3, sizeof(e3)));
    return;
  }
  add_link(pid, l);
  if (!(spec_flags[idx] & (LS_F_ENTRY_EMIT | LS_F_RET_ONLY))) {
    LIBBPF_OPTS(bpf_uprobe_opts, ro, .func_name = sym, .bpf_cookie = idx, .retprobe = true);
    struct bpf_link *r = bpf_program__attach_uprobe_opts(skel->progs.ls_return, pid, path, skip, &ro);
    if (!r) {
      int err = errno;
      status("{\"probe\":%d,\"pid\":%d,\"ok\":false,\"path\":\"%s\",\"symbol\":\"%s\",\"error\":\"return probe: %s\"}", idx, pid,
             jstr(path, e1, sizeof(e1)), jstr(sym, e2, sizeof(e2)), jstr(strerror(err), e3, sizeof(e3)));
      return;
    }
    add_link(pid, r);
  }
  status("{\"probe\":%d,\"pid\":%d,\"ok\":true}", idx, pid);
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
  uint32_t key = idx;
  if (bpf_map_update_elem(bpf_map__fd(skel->maps.specs), &key, &s, BPF_ANY)) { status("{\"error\":\"spec: map update failed\"}"); return; }
  spec_flags[idx] = s.flags;
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
    uint32_t k = num(f[1]); uint8_t one = 1;
    bpf_map_update_elem(bpf_map__fd(skel->maps.traced), &k, &one, BPF_ANY);
    status("{\"trace\":%u,\"ok\":true}", k);
  } else if (!strcmp(f[0], "ready") && n >= 2) {
    int k = ready_slot(num(f[1]), 1);
    if (k >= 0) ready_tab[k].ts = mono_ns();
    if (skel->rodata->agg_mode) agg_forget((uint32_t)num(f[1]));
    status("{\"ready\":%ld,\"ok\":%s}", num(f[1]), k >= 0 ? "true" : "false");
  } else if (!strcmp(f[0], "untrace") && n >= 2) {
    drop_pid(num(f[1]));
    status("{\"untrace\":%ld,\"ok\":true}", num(f[1]));
  } else if (!strcmp(f[0], "aggdump")) agg_dump();
  else if (!strcmp(f[0], "quit")) return 1;
  else if (f[0][0]) status("{\"error\":\"unknown command\"}");
  return 0;
}

static int list_symbols(const char *path, char **syms, int nsyms)
{
  if (elf_version(EV_CURRENT) == EV_NONE) return 1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { fprintf(stderr, "leakscope-bpf: %s: %s\n", path, strerror(errno)); return 1; }
  Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
  if (!elf) { fprintf(stderr, "leakscope-bpf: %s: not an ELF file\n", path); close(fd); return 1; }
  char found[nsyms];
  memset(found, 0, nsyms);
  Elf_Scn *scn = NULL;
  while ((scn = elf_nextscn(elf, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize) continue;
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d) continue;
    size_t cnt = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < cnt; i++) {
      GElf_Sym s;
      if (!gelf_getsym(d, i, &s) || s.st_shndx == SHN_UNDEF || GELF_ST_TYPE(s.st_info) != STT_FUNC) continue;
      const char *name = elf_strptr(elf, sh.sh_link, s.st_name);
      if (!name) continue;
      for (int j = 0; j < nsyms; j++) {
        size_t l = strlen(syms[j]);
        /* versioned names (malloc@@GLIBC_2.2.5) match their base name */
        if (!found[j] && !strncmp(name, syms[j], l) && (name[l] == 0 || name[l] == '@')) found[j] = 1;
      }
    }
  }
  for (int j = 0; j < nsyms; j++) if (found[j]) printf("%s\n", syms[j]);
  elf_end(elf);
  close(fd);
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

int main(int argc, char **argv)
{
  if (argc >= 3 && !strcmp(argv[1], "symbols")) return list_symbols(argv[2], argv + 3, argc - 3);
  if (argc == 2 && !strcmp(argv[1], "verify")) return verify_all();
  if (argc < 2 || strcmp(argv[1], "run")) {
    fprintf(stderr, "usage: leakscope-bpf run [--mode events|aggregate] [--stack-bytes N] [--ringbuf-mb N] [--unwind LIB]\n"
                    "       leakscope-bpf symbols PATH SYM...\n"
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

  struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
  if (!rb) { fprintf(stderr, "leakscope-bpf: cannot create the ring buffer reader\n"); return 1; }
  status("{\"ready\":true,\"mode\":\"%s\",\"unwinder\":%s}", skel->rodata->agg_mode ? "aggregate" : "events", unwind_fn ? "true" : "false");

  char *line = NULL;
  size_t linecap = 0, linelen = 0;
  char inbuf[4096];
  struct pollfd pfd[3] = { { .fd = 0, .events = POLLIN }, { .fd = ring_buffer__epoll_fd(rb), .events = POLLIN }, { .fd = 1, .events = 0 } };
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);
  struct timespec last_lost = { 0 };
  int quit = 0;
  while (!stop && !quit) {
    /* the BPF side does not wake us per event (BPF_RB_NO_WAKEUP): drain every 5 ms */
    int pr = poll(pfd, 3, 5);
    if (pr < 0 && errno != EINTR) break;
    ring_buffer__consume(rb);
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
  for (size_t i = 0; i < nlinks; i++) bpf_link__destroy(links[i].link);
  nlinks = 0;
  ring_buffer__consume(rb);
  emit_lost();
  status("{\"done\":true,\"unwindCacheHits\":%llu,\"unwindCacheMisses\":%llu}", (unsigned long long)ucache_hits, (unsigned long long)ucache_misses);
  if (verify_cache) fprintf(stderr, "leakscope-bpf: unwind cache: %llu hits, %llu misses, %llu hits that a fresh unwind disagrees with\n",
                            (unsigned long long)ucache_hits, (unsigned long long)ucache_misses, (unsigned long long)ucache_wrong);
  out_flush(1);
  ring_buffer__free(rb);
  bpf_link__destroy(lf);
  bpf_link__destroy(le);
  leakscope__destroy(skel);
  return 0;
}
