// Raises SIGUSR2 at itself 50 times, with a block allocated just before each signal
// (3000 + i bytes) and one just after (4000 + i): all within a few of the recorder's clock
// ticks, so only the recorder's ordering (not the clock's resolution) puts each "after" block
// after its marker.
#include <signal.h>
#include <stdlib.h>

int main(void) {
  static void *volatile keep[100];
  for (int i = 0; i < 50; i++) {
    keep[2 * i] = malloc(3000 + i);
    raise(SIGUSR2);
    keep[2 * i + 1] = malloc(4000 + i);
  }
  return keep[0] == 0;
}
