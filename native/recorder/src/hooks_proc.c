// Process-level hooks: dlopen (new modules for symbolization), exec (flush first; tell the new
// image it continues a traced process: LEAKSCOPE_PID=<pid> makes it write EXEC, not PROCESS).
#include <dlfcn.h>
#include <errno.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lk.h"

extern char **environ;

LK_EXPORT void *dlopen(const char *file, int flags) {
  static void *(*r_dlopen)(const char *, int);
  if (!r_dlopen) {
    lk_ts.guard++;
    r_dlopen = dlsym(RTLD_NEXT, "dlopen");
    lk_ts.guard--;
    if (!r_dlopen) return NULL;
  }
  void *h = r_dlopen(file, flags);
  if (h && lk_state == 2 && !lk_ts.guard) {
    lk_ts.guard++;
    lk_buf *b = lk_begin(256);
    if (b) {
      lk_modules_scan(b);
      lk_end(b);
    }
    lk_ts.guard--;
  }
  return h;
}

// A library unloaded: stacks.c drops what it learned of its code (see lk_modules_scan).
LK_EXPORT int dlclose(void *handle) {
  static int (*r_dlclose)(void *);
  if (!r_dlclose) {
    lk_ts.guard++;
    r_dlclose = dlsym(RTLD_NEXT, "dlclose");
    lk_ts.guard--;
    if (!r_dlclose) return -1;
  }
  int rc = r_dlclose(handle);
  if (rc == 0 && lk_state == 2 && !lk_ts.guard) {
    lk_ts.guard++;
    lk_buf *b = lk_begin(256);
    if (b) {
      lk_modules_scan(b);
      lk_end(b);
    }
    lk_ts.guard--;
  }
  return rc;
}

// Copies envp with the recorder's variables set for the new image: LEAKSCOPE_PID (it continues
// this traced process), LEAKSCOPE_GEN (its generation, for id bases), and the trace file and
// time origin (the same file and timeline even when the recorder was preloaded by hand).
// `out` has room for count(envp) + 5 entries.
typedef struct { char pid[48], gen[48], start[64], trace[4096 + 32]; } env_vars;

static int ours(const char *kv) {
  return strncmp(kv, "LEAKSCOPE_PID=", 14) == 0 || strncmp(kv, "LEAKSCOPE_GEN=", 14) == 0 ||
         strncmp(kv, "LEAKSCOPE_START_NS=", 19) == 0 || strncmp(kv, "LEAKSCOPE_TRACE=", 16) == 0;
}

static void traced_env(char *const envp[], char **out, env_vars *v) {
  const char *gen = getenv("LEAKSCOPE_GEN");
  snprintf(v->pid, sizeof v->pid, "LEAKSCOPE_PID=%d", (int)getpid());
  snprintf(v->gen, sizeof v->gen, "LEAKSCOPE_GEN=%lu", (gen ? strtoul(gen, NULL, 10) : 0) + 1);
  snprintf(v->start, sizeof v->start, "LEAKSCOPE_START_NS=%llu", (unsigned long long)lk_start_ns);
  snprintf(v->trace, sizeof v->trace, "LEAKSCOPE_TRACE=%s", lk_trace_path);
  size_t n = 0;
  for (size_t i = 0; envp && envp[i]; i++)
    if (!ours(envp[i])) out[n++] = envp[i];
  out[n++] = v->pid;
  out[n++] = v->gen;
  if (lk_state >= 2 && lk_start_ns) out[n++] = v->start;
  if (lk_trace_path[0]) out[n++] = v->trace;
  out[n] = NULL;
}

static size_t env_count(char *const envp[]) {
  size_t n = 0;
  while (envp && envp[n]) n++;
  return n;
}

static void before_exec(void) {
  if (lk_state != 2) return;
  lk_ts.guard++;
  lk_drain_marks();  // a SIGUSR2 the flusher has not handled yet is this image's marker
  lk_flush_all(100);
  lk_ts.guard--;
}

LK_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  static int (*r_execve)(const char *, char *const[], char *const[]);
  if (!r_execve) r_execve = dlsym(RTLD_NEXT, "execve");
  before_exec();
  static env_vars vars;  // exec does not return on success; on failure nothing else uses it
  char *env[env_count(envp) + 5];
  traced_env(envp, env, &vars);
  return r_execve(path, argv, env);
}

LK_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

LK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  static int (*r_execvpe)(const char *, char *const[], char *const[]);
  if (!r_execvpe) r_execvpe = dlsym(RTLD_NEXT, "execvpe");
  before_exec();
  static env_vars vars;  // exec does not return on success; on failure nothing else uses it
  char *env[env_count(envp) + 5];
  traced_env(envp, env, &vars);
  return r_execvpe(file, argv, env);
}

LK_EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

// The execl family builds an argv and goes through the hooks above (glibc's own would call its
// internal execve, unseen).
#define COLLECT_ARGS(first, ap, argv)                          \
  size_t n_ = 1;                                               \
  va_start(ap, first);                                         \
  while (va_arg(ap, char *)) n_++;                             \
  va_end(ap);                                                  \
  char *argv[n_ + 1];                                          \
  argv[0] = (char *)(first);                                   \
  va_start(ap, first);                                         \
  for (size_t i_ = 1; i_ <= n_; i_++) argv[i_] = va_arg(ap, char *);

LK_EXPORT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv)
  va_end(ap);
  return execve(path, argv, environ);
}

LK_EXPORT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv)
  va_end(ap);
  return execvpe(file, argv, environ);
}

LK_EXPORT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  COLLECT_ARGS(arg, ap, argv)
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}

// Programs that close every descriptor they did not open (daemons) must not close the trace:
// close() of it pretends to succeed; close_range() and closefrom() skip it.
LK_EXPORT int close(int fd) {
  static int (*r_close)(int);
  if (!r_close) r_close = dlsym(RTLD_NEXT, "close");
  if (fd >= 0 && fd == lk_fd) return 0;
  return r_close(fd);
}

LK_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  static int (*r_close_range)(unsigned, unsigned, int);
  if (!r_close_range) r_close_range = dlsym(RTLD_NEXT, "close_range");
  if (!r_close_range) { errno = ENOSYS; return -1; }
  unsigned fd = (unsigned)lk_fd;
  if (lk_fd < 0 || fd < first || fd > last || (flags & CLOSE_RANGE_CLOEXEC)) return r_close_range(first, last, flags);
  int rc = 0;
  if (fd > first) rc = r_close_range(first, fd - 1, flags);
  if (rc == 0 && fd < last) rc = r_close_range(fd + 1, last, flags);
  return rc;
}

LK_EXPORT void closefrom(int lowfd) {
  if (lk_fd >= 0 && lk_fd >= lowfd) {
    close_range((unsigned)(lowfd < 0 ? 0 : lowfd), ~0u, 0);
    return;
  }
  static void (*r_closefrom)(int);
  if (!r_closefrom) r_closefrom = dlsym(RTLD_NEXT, "closefrom");
  if (r_closefrom) r_closefrom(lowfd);
}
