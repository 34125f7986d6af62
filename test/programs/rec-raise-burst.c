// Raises SIGUSR2 at itself 20000 times as fast as it can: under the recorder each one is a marker,
// or, when the flusher has not caught up with 64 of them, a count in a LOST record.
#include <signal.h>
#include <stdlib.h>

int main(void) {
  void *volatile p = malloc(10);
  for (int i = 0; i < 20000; i++) raise(SIGUSR2);
  return p == 0;
}
