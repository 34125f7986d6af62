// Process-level hooks: dlopen (new modules for symbolization), exec (flush first; tell the new
// image it continues a traced process: LEAKSCOPE_PID=<pid> makes it write EXEC, not PROCESS).
#include <dlfcn.h>
#include <errno.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/syscall.h>
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

// The environment a program gives exec is its choice. Only when it keeps the recorder preloaded
// (LD_PRELOAD naming our library, as when it passes its environment on) are the recorder's
// variables set for the new image: LEAKSCOPE_PID (it continues this traced process: not when a
// vfork() child, another pid, execs), LEAKSCOPE_GEN (its generation, for id bases), and the
// trace file and time origin (the same file and timeline even when the recorder was preloaded
// by hand). An empty or cleaned environment without it goes to exec untouched: the new image is
// not traced. `out` has room for count(envp) + 5 entries.
typedef struct { char pid[48], gen[48], start[64], trace[4096 + 32]; } env_vars;

static int ours(const char *kv) {
  return strncmp(kv, "LEAKSCOPE_PID=", 14) == 0 || strncmp(kv, "LEAKSCOPE_GEN=", 14) == 0 ||
         strncmp(kv, "LEAKSCOPE_START_NS=", 19) == 0 || strncmp(kv, "LEAKSCOPE_TRACE=", 16) == 0;
}

// Whether envp's LD_PRELOAD names this library (by its file name, as the loader found it).
static int preloads_us(char *const envp[]) {
  static const char *self;
  if (!self) {
    Dl_info di;
    const char *name = dladdr((void *)preloads_us, &di) && di.dli_fname ? di.dli_fname : "libleakscope.so";
    const char *slash = strrchr(name, '/');
    self = slash ? slash + 1 : name;
  }
  for (size_t i = 0; envp && envp[i]; i++)
    if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0 && strstr(envp[i] + 11, self)) return 1;
  return 0;
}

static void traced_env(char *const envp[], char **out, env_vars *v) {
  const char *gen = getenv("LEAKSCOPE_GEN");
  int same_process = (uint32_t)syscall(SYS_getpid) == lk_current_pid();
  snprintf(v->pid, sizeof v->pid, "LEAKSCOPE_PID=%d", (int)getpid());
  snprintf(v->gen, sizeof v->gen, "LEAKSCOPE_GEN=%lu", (gen ? strtoul(gen, NULL, 10) : 0) + 1);
  snprintf(v->start, sizeof v->start, "LEAKSCOPE_START_NS=%llu", (unsigned long long)lk_start_ns);
  snprintf(v->trace, sizeof v->trace, "LEAKSCOPE_TRACE=%s", lk_trace_path);
  size_t n = 0;
  for (size_t i = 0; envp && envp[i]; i++)
    if (!ours(envp[i])) out[n++] = envp[i];
  if (same_process) out[n++] = v->pid;
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
  lk_drain_marks(1);  // a SIGUSR2 the flusher has not handled yet is this image's marker
  lk_flush_all(100);
  lk_ts.guard--;
}

LK_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  static int (*r_execve)(const char *, char *const[], char *const[]);
  if (!r_execve) r_execve = dlsym(RTLD_NEXT, "execve");
  before_exec();
  if (lk_state != 2 || !preloads_us(envp)) return r_execve(path, argv, envp);
  static env_vars vars;  // exec does not return on success; on failure nothing else uses it
  size_t bytes = (env_count(envp) + 5) * sizeof(char *);
  char **env = lk_raw_mmap(bytes);  // not on the caller's stack: it may be small, the list long
  if (!env) return r_execve(path, argv, envp);
  traced_env(envp, env, &vars);
  int rc = r_execve(path, argv, env);
  int saved = errno;
  lk_raw_munmap(env, bytes);
  errno = saved;
  return rc;
}

LK_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

LK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  static int (*r_execvpe)(const char *, char *const[], char *const[]);
  if (!r_execvpe) r_execvpe = dlsym(RTLD_NEXT, "execvpe");
  before_exec();
  if (lk_state != 2 || !preloads_us(envp)) return r_execvpe(file, argv, envp);
  static env_vars vars;
  size_t bytes = (env_count(envp) + 5) * sizeof(char *);
  char **env = lk_raw_mmap(bytes);
  if (!env) return r_execvpe(file, argv, envp);
  traced_env(envp, env, &vars);
  int rc = r_execvpe(file, argv, env);
  int saved = errno;
  lk_raw_munmap(env, bytes);
  errno = saved;
  return rc;
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

// Namespace calls that need a single-threaded process (unshare(CLONE_NEWUSER), setns() into a
// user or mount namespace: EINVAL otherwise): our flusher thread is stopped and joined for the
// call, and restarts at the next record. A program that makes the system call itself (syscall())
// is not seen: there the flusher thread is still in the way.
LK_EXPORT int unshare(int flags) {
  static int (*r_unshare)(int);
  if (!r_unshare) r_unshare = (int (*)(int))dlsym(RTLD_NEXT, "unshare");
  lk_flusher_stop();
  int rc = r_unshare ? r_unshare(flags) : (int)syscall(SYS_unshare, flags);
  int saved = errno;
  lk_flusher_release();
  errno = saved;
  return rc;
}

LK_EXPORT int setns(int fd, int nstype) {
  static int (*r_setns)(int, int);
  if (!r_setns) r_setns = (int (*)(int, int))dlsym(RTLD_NEXT, "setns");
  lk_flusher_stop();
  int rc = r_setns ? r_setns(fd, nstype) : (int)syscall(SYS_setns, fd, nstype);
  int saved = errno;
  lk_flusher_release();
  errno = saved;
  return rc;
}

// clone() without CLONE_VM: a new process, as fork() makes, without fork's atfork handlers; ours
// run around it (the child writes FORK and records as its own pid), and the child's end is
// recorded when its function returns (glibc then leaves by the exit system call, past every
// exit hook). With CLONE_VM and without CLONE_THREAD (a vfork-like child) the child shares the
// calling thread's recorder state: what it allocates is recorded as the parent's.
typedef struct { int (*fn)(void *); void *arg; } clone_call;

static int clone_child(void *p) {
  clone_call c = *(clone_call *)p;  // the parent's stack, as copied into the child
  lk_clone_child();
  int rc = c.fn(c.arg);
  lk_clone_child_exit(rc);
  return rc;
}

LK_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
  static int (*r_clone)(int (*)(void *), void *, int, void *, ...);
  if (!r_clone) r_clone = (int (*)(int (*)(void *), void *, int, void *, ...))dlsym(RTLD_NEXT, "clone");
  if (!r_clone) { errno = ENOSYS; return -1; }
  va_list ap;
  va_start(ap, arg);
  pid_t *ptid = va_arg(ap, pid_t *);  // read whether given or not, as glibc's own wrapper does
  void *tls = va_arg(ap, void *);
  pid_t *ctid = va_arg(ap, pid_t *);
  va_end(ap);
  if ((flags & CLONE_VM) || lk_state != 2 || lk_ts.guard) return r_clone(fn, stack, flags, arg, ptid, tls, ctid);
  clone_call c = {fn, arg};
  lk_clone_prepare();
  int rc = r_clone(clone_child, stack, flags, &c, ptid, tls, ctid);
  int saved = errno;
  lk_clone_parent();
  errno = saved;
  return rc;
}
