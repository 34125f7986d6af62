// Process-level hooks: dlopen (new modules for symbolization), exec (flush first; tell the new
// image it continues a traced process: LEAKSCOPE_PID=<pid> makes it write EXEC, not PROCESS).
#include <dlfcn.h>
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

// Copies envp with LEAKSCOPE_PID and LEAKSCOPE_GEN (the image's generation, for id bases)
// replaced; `out` has room for count(envp) + 3 entries.
static void traced_env(char *const envp[], char **out, char *pidvar, char *genvar, size_t cap) {
  const char *gen = getenv("LEAKSCOPE_GEN");
  snprintf(pidvar, cap, "LEAKSCOPE_PID=%d", (int)getpid());
  snprintf(genvar, cap, "LEAKSCOPE_GEN=%lu", (gen ? strtoul(gen, NULL, 10) : 0) + 1);
  size_t n = 0;
  for (size_t i = 0; envp && envp[i]; i++)
    if (strncmp(envp[i], "LEAKSCOPE_PID=", 14) != 0 && strncmp(envp[i], "LEAKSCOPE_GEN=", 14) != 0) out[n++] = envp[i];
  out[n++] = pidvar;
  out[n++] = genvar;
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
  lk_flush_all(100);
  lk_ts.guard--;
}

LK_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  static int (*r_execve)(const char *, char *const[], char *const[]);
  if (!r_execve) r_execve = dlsym(RTLD_NEXT, "execve");
  before_exec();
  char pidvar[48], genvar[48];
  char *env[env_count(envp) + 3];
  traced_env(envp, env, pidvar, genvar, sizeof pidvar);
  return r_execve(path, argv, env);
}

LK_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

LK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  static int (*r_execvpe)(const char *, char *const[], char *const[]);
  if (!r_execvpe) r_execvpe = dlsym(RTLD_NEXT, "execvpe");
  before_exec();
  char pidvar[48], genvar[48];
  char *env[env_count(envp) + 3];
  traced_env(envp, env, pidvar, genvar, sizeof pidvar);
  return r_execvpe(file, argv, env);
}

LK_EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }
