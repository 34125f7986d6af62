/* Verifier statistics and one-line load-failure reasons, shared by leakscope's BPF loaders
 * (native/bpf, native/luajit, native/unwind/kstack).
 *
 * Every program gets a verifier log buffer. A loader's verify mode loads with the stats-level log
 * (BPF_LOG_STATS: a few lines); a normal load asks for no log (logging slows the verifier down),
 * and libbpf loads a rejected program again with the full log into the same buffer:
 *  - after a verify load, `ls_verify_print` writes per program the instructions the verifier
 *    processed (bpf_prog_info.verified_insns), the program's size and its stack depth, as JSON
 *    lines (a loader's --verify mode; `leakscope doctor` and the margin test read them);
 *  - after a failed load, `ls_verify_reason` gives the verifier's own reason in one line
 *    ("BPF program is too large. Processed 1000001 insn", an unknown helper, a BTF error),
 *    and blames permissions only when the kernel said EPERM/EACCES without a verifier reason.
 * Header-only: each loader is one C file. */
#ifndef LS_VERIFY_H
#define LS_VERIFY_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* The kernel's limits: BPF_COMPLEXITY_LIMIT_INSNS (processed instructions, and a privileged
 * program's size) and MAX_BPF_STACK (combined stack of a call chain). */
#define LS_VERIFY_INSN_LIMIT 1000000
#define LS_VERIFY_STACK_LIMIT 512
#define LS_VERIFY_LOG_SIZE (64 << 10)
#define LS_VERIFY_MAX_PROGS 32
#define LS_VERIFY_LIBBPF_SIZE 4096

struct ls_verify {
  char *logs[LS_VERIFY_MAX_PROGS];
  const char *names[LS_VERIFY_MAX_PROGS];
  int n;
};

/* libbpf's own warnings (BTF, relocations, maps) of the last load. libbpf's print callback
 * takes no context pointer, hence one buffer per loader process. */
static char ls_libbpf_warn[LS_VERIFY_LIBBPF_SIZE];
static size_t ls_libbpf_warn_len;
/* The CO-RE relocation libbpf found no match for in the kernel's BTF (its description, from
 * libbpf's debug messages): the verifier only sees the poisoned instruction libbpf put there. */
static char ls_relo_last[256], ls_relo_failed[256];
#define LS_CORE_POISON "unknown#195896080" /* libbpf's 0xbad2310 */

/* s as a JSON string. */
static inline void ls_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* Call from the loader's libbpf print callback. */
static inline void ls_verify_libbpf(enum libbpf_print_level lvl, const char *fmt, va_list ap) {
  if (lvl == LIBBPF_DEBUG) {
    if (!strstr(fmt, "relo #")) return;
    char l[256];
    vsnprintf(l, sizeof l, fmt, ap);
    l[strcspn(l, "\n")] = 0;
    if (strstr(l, "no matching targets")) { if (!ls_relo_failed[0]) memcpy(ls_relo_failed, ls_relo_last, sizeof ls_relo_failed); }
    else if (!strstr(l, "candidate") && !strstr(l, "substituting") && !strstr(l, "matching")) {
      const char *d = strstr(l, "relo #");
      snprintf(ls_relo_last, sizeof ls_relo_last, "%s", d);
    }
    return;
  }
  if (lvl != LIBBPF_WARN || ls_libbpf_warn_len + 1 >= sizeof ls_libbpf_warn) return;
  int r = vsnprintf(ls_libbpf_warn + ls_libbpf_warn_len, sizeof ls_libbpf_warn - ls_libbpf_warn_len, fmt, ap);
  if (r > 0) ls_libbpf_warn_len += (size_t)r;
  if (ls_libbpf_warn_len >= sizeof ls_libbpf_warn) ls_libbpf_warn_len = sizeof ls_libbpf_warn - 1;
}

#define LS_VERIFY_STATS 4 /* BPF_LOG_STATS: for --verify */
#define LS_VERIFY_ON_FAILURE 0 /* no log, unless the load fails */

/* Before bpf_object__load (after open): a log buffer per program, and its level. */
static inline void ls_verify_prepare(struct ls_verify *v, struct bpf_object *obj, __u32 level) {
  struct bpf_program *p;
  memset(v, 0, sizeof *v);
  ls_libbpf_warn_len = 0;
  ls_libbpf_warn[0] = 0;
  ls_relo_last[0] = ls_relo_failed[0] = 0;
  bpf_object__for_each_program(p, obj) {
    if (v->n >= LS_VERIFY_MAX_PROGS) break;
    char *buf = calloc(1, LS_VERIFY_LOG_SIZE);
    if (!buf) break;
    if (bpf_program__set_log_buf(p, buf, LS_VERIFY_LOG_SIZE) || bpf_program__set_log_level(p, level)) { free(buf); break; }
    v->names[v->n] = bpf_program__name(p);
    v->logs[v->n++] = buf;
  }
}

static inline void ls_verify_free(struct ls_verify *v) {
  for (int i = 0; i < v->n; i++) free(v->logs[i]);
  v->n = 0;
}

static inline const char *ls_verify_log(struct ls_verify *v, const char *name) {
  for (int i = 0; i < v->n; i++) if (!strcmp(v->names[i], name)) return v->logs[i];
  return NULL;
}

/* Sum of "stack depth A+B+C" (one number per subprogram): an upper bound of the deepest chain. */
static inline long ls_verify_stack(const char *log) {
  const char *s = log ? strstr(log, "stack depth ") : NULL;
  if (!s) return -1;
  s += 12;
  long sum = 0;
  for (;;) {
    char *end;
    long d = strtol(s, &end, 10);
    if (end == s) break;
    sum += d;
    if (*end != '+') break;
    s = end + 1;
  }
  return sum;
}

/* One JSON line per loaded program: name, verified instructions, size, stack. */
static inline void ls_verify_print(struct ls_verify *v, struct bpf_object *obj, FILE *f, const char *loader, const char *config) {
  struct bpf_program *p;
  bpf_object__for_each_program(p, obj) {
    int fd = bpf_program__fd(p);
    if (fd < 0) continue; /* not loaded (autoload off) */
    struct bpf_prog_info info;
    __u32 len = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len)) continue;
    const char *log = ls_verify_log(v, bpf_program__name(p));
    const char *d = log ? strstr(log, "stack depth ") : NULL;
    size_t dn = d ? strspn(d + 12, "0123456789+") : 0;
    fprintf(f, "{\"loader\":\"%s\",\"config\":\"%s\",\"program\":\"%s\",\"verified_insns\":%u,\"insns\":%u,\"stack\":%ld,"
               "\"stack_depths\":\"%.*s\",\"insn_limit\":%d,\"stack_limit\":%d}\n",
            loader, config, bpf_program__name(p), info.verified_insns, info.xlated_prog_len / 8,
            ls_verify_stack(log), (int)dn, d ? d + 12 : "", LS_VERIFY_INSN_LIMIT, LS_VERIFY_STACK_LIMIT);
  }
  fflush(f);
}

static inline int ls_stats_line(const char *l, size_t n) {
  static const char *const pre[] = { "processed ", "verification time", "stack depth", "func#", NULL };
  for (int i = 0; pre[i]; i++) if (n >= strlen(pre[i]) && !strncmp(l, pre[i], strlen(pre[i]))) return 1;
  return 0;
}

/* The last line of a log that is not a statistics line, into out. */
static inline int ls_last_reason(const char *log, char *out, size_t outsz) {
  const char *best = NULL;
  size_t bestn = 0;
  for (const char *l = log; l && *l;) {
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    if (n && !ls_stats_line(l, n)) { best = l; bestn = n; }
    l = e ? e + 1 : NULL;
  }
  if (!best) return 0;
  if (bestn >= outsz) bestn = outsz - 1;
  memcpy(out, best, bestn);
  out[bestn] = 0;
  return 1;
}

/* After a failed load with errno err: the reason, in one line, into out. */
static inline void ls_verify_reason(struct ls_verify *v, int err, char *out, size_t outsz) {
  char why[512];
  /* The rejected program: the one whose log has more than statistics (libbpf stops at it). */
  for (int i = 0; i < v->n; i++) {
    if (!v->logs[i][0] || !ls_last_reason(v->logs[i], why, sizeof why)) continue;
    const char *p = strstr(v->logs[i], "processed ");
    long processed = p ? strtol(p + 10, NULL, 10) : -1;
    if (strstr(why, LS_CORE_POISON) || strstr(why, "CO-RE"))
      snprintf(out, outsz, "program %s reads what this kernel's BTF does not have (a CO-RE relocation found no match: %s)", v->names[i],
               ls_relo_failed[0] ? ls_relo_failed : why);
    else if (strstr(why, "too large") || processed >= LS_VERIFY_INSN_LIMIT)
      snprintf(out, outsz, "the kernel's verifier rejected program %s: %s (the limit is %d processed instructions)", v->names[i], why, LS_VERIFY_INSN_LIMIT);
    else
      snprintf(out, outsz, "the kernel's verifier rejected program %s: %s", v->names[i], why);
    return;
  }
  /* No verifier reason: libbpf's first specific warning (BTF, relocation, map), if any. */
  for (const char *l = ls_libbpf_warn; *l;) {
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    const char *generic[] = { "failed to load object", "failed to load BPF skeleton", "BEGIN PROG LOAD LOG", "END PROG LOAD LOG", NULL };
    int skip = !n;
    for (int k = 0; generic[k] && !skip; k++) if (memmem(l, n, generic[k], strlen(generic[k]))) skip = 1;
    if (!skip && !(err == EPERM || err == EACCES)) {
      if (n >= sizeof why) n = sizeof why - 1;
      memcpy(why, l, n);
      why[n] = 0;
      snprintf(out, outsz, "%s (%s)", why, strerror(err));
      return;
    }
    l = e ? e + 1 : l + n;
  }
  if (err == EPERM || err == EACCES)
    snprintf(out, outsz, "%s: loading BPF programs needs root (or CAP_BPF and CAP_PERFMON)", strerror(err));
  else
    snprintf(out, outsz, "%s", strerror(err));
}

#endif
