// Conformance: exec with an empty environment and with a cleaned one: the new program sees
// exactly what it was given (it prints its environment).
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

static void run(char *const envp[], const char *what) {
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    char *argv[] = {"env", NULL};
    execve("/usr/bin/env", argv, envp);
    _exit(127);
  }
  int st;
  waitpid(c, &st, 0);
  printf("%s: exit %d\n", what, WEXITSTATUS(st));
}

int main(void) {
  char *empty[] = {NULL};
  run(empty, "empty environment");
  char *clean[] = {"PATH=/usr/bin:/bin", "GREETING=hello", NULL};
  run(clean, "cleaned environment");
  sink = malloc(10);
  free(sink);
  return 0;
}
