// Signal dispositions as the program sees them. The recorder puts its handlers (crash flush,
// SIGUSR2 markers) only on signals the program left at the default; sigaction(), signal(),
// bsd_signal() and sysv_signal() then answer with the program's own disposition (the default,
// with its flags and mask), and a program that installs its own handler gets it for real. When
// it sets the default back, our handler goes back in, still unseen. What cannot be hidden: the
// raw rt_sigaction system call and /proc/PID/status (SigCgt) show our handlers.
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "lk.h"

#define NSIGS 65
static struct sigaction g_view[NSIGS];     // what the program believes is installed
static struct sigaction g_ours[NSIGS];     // our handler for it
static volatile unsigned char g_managed[NSIGS];  // we may put our handler on this signal
static volatile unsigned char g_taken[NSIGS];    // our handler is installed now (g_view is the program's)

static int (*r_sigaction)(int, const struct sigaction *, struct sigaction *);

int lk_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!r_sigaction) {
    lk_ts.guard++;
    r_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
    lk_ts.guard--;
    if (!r_sigaction) {
      errno = ENOSYS;
      return -1;
    }
  }
  return r_sigaction(sig, act, old);
}

void lk_signal_take(int sig, const struct sigaction *ours) {
  struct sigaction cur;
  if (sig <= 0 || sig >= NSIGS || lk_real_sigaction(sig, NULL, &cur) != 0) return;
  g_ours[sig] = *ours;
  g_managed[sig] = 1;
  if (cur.sa_handler != SIG_DFL) return;  // the program's own (or ignored, e.g. under nohup)
  g_view[sig] = cur;
  if (lk_real_sigaction(sig, ours, NULL) == 0) g_taken[sig] = 1;
}

void lk_signal_default(int sig) {
  if (sig <= 0 || sig >= NSIGS || !g_taken[sig]) return;
  g_taken[sig] = 0;
  lk_real_sigaction(sig, &g_view[sig], NULL);
}

LK_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig <= 0 || sig >= NSIGS || !g_managed[sig]) return lk_real_sigaction(sig, act, old);
  if (g_taken[sig]) {
    struct sigaction prev = g_view[sig];
    if (act && act->sa_handler != SIG_DFL) {
      if (lk_real_sigaction(sig, act, NULL) != 0) return -1;
      g_taken[sig] = 0;
    } else if (act) {
      g_view[sig] = *act;  // the default again: ours stays in, unseen
    }
    if (old) *old = prev;
    return 0;
  }
  if (act && act->sa_handler == SIG_DFL && lk_state == 2) {
    // The program puts the default back: ours goes in its place.
    struct sigaction prev;
    if (lk_real_sigaction(sig, &g_ours[sig], &prev) != 0) return -1;
    g_view[sig] = *act;
    g_taken[sig] = 1;
    if (old) *old = prev;
    return 0;
  }
  return lk_real_sigaction(sig, act, old);
}

LK_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old) { return sigaction(sig, act, old); }

static __sighandler_t set_handler(int sig, __sighandler_t h, int flags) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = h;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  if (flags & SA_RESTART) sigaddset(&act.sa_mask, sig);  // BSD semantics, as glibc's signal()
  if (sig <= 0 || sig >= NSIGS || h == SIG_ERR) {
    errno = EINVAL;
    return SIG_ERR;
  }
  return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

// glibc's signal() and friends call its internal sigaction, which our hook does not see.
LK_EXPORT __sighandler_t signal(int sig, __sighandler_t h) { return set_handler(sig, h, SA_RESTART); }
LK_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h) { return set_handler(sig, h, SA_RESTART); }
LK_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h) { return set_handler(sig, h, SA_RESETHAND | SA_NODEFER); }
