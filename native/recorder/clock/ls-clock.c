// ls-clock: prints the clock the recorder stamps its events with (CLOCK_MONOTONIC_COARSE, ns),
// for `leakscope mark`: a marker placed from outside must be on the events' own clock. The
// coarse clock lags CLOCK_MONOTONIC by up to a tick or more (4-6 ms on a 250 Hz kernel), so a
// marker timed on the precise clock could land after events recorded after it.
#include <stdio.h>
#include <time.h>

int main(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) {
    perror("ls-clock: clock_gettime(CLOCK_MONOTONIC_COARSE)");
    return 1;
  }
  printf("%llu\n", (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
  return 0;
}
