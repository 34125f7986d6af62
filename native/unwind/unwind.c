/* CFI unwinding of sampled user stacks with elfutils libdwfl: the same technique as perf's
 * util/unwind-libdw.c, with one long-lived Dwfl per pid so that module reports and parsed CFI
 * are reused across samples (perf builds a Dwfl per sample; that costs milliseconds). */
#define _GNU_SOURCE
#include "unwind.h"

#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 256
#define REPORT_AGAIN_NS 1000000000ull /* re-read maps at most once a second per pid */

/* x86-64 DWARF register numbers */
#define DW_RBP 6
#define DW_RSP 7

struct proc {
  int pid;
  Dwfl *dwfl;
  uint64_t last_report_ns;
  uint64_t last_use;
  bool stale;
  /* the sample being unwound (valid during one ls_unwind call) */
  const uint8_t *stack;
  size_t stack_len;
  uint64_t stack_base;
  uint64_t regs[3];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct proc *procs[MAX_PROCS];
static uint64_t use_clock;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Separate debug files are not searched (no network look-ups, no multi-MB loads per
 * library): .eh_frame, and .debug_frame when the module itself carries it, are enough. */
static int no_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                        const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                        char **debuginfo_file_name) {
  (void)mod; (void)userdata; (void)modname; (void)base; (void)file_name;
  (void)debuglink_file; (void)debuglink_crc; (void)debuginfo_file_name;
  return -1;
}

static const Dwfl_Callbacks dwfl_callbacks = {
  .find_elf = dwfl_linux_proc_find_elf,
  .find_debuginfo = no_debuginfo,
};

static pid_t next_thread(Dwfl *dwfl, void *dwfl_arg, void **thread_argp) {
  (void)dwfl;
  struct proc *p = dwfl_arg;
  if (*thread_argp != NULL) return 0;
  *thread_argp = p;
  return p->pid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *dwfl_arg, void **thread_argp) {
  (void)dwfl; (void)tid;
  *thread_argp = dwfl_arg;
  return true;
}

/* Only the copied slice is memory: anything else is stale or was never copied. */
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *dwfl_arg) {
  (void)dwfl;
  struct proc *p = dwfl_arg;
  if (addr < p->stack_base) return false;
  uint64_t off = addr - p->stack_base;
  if (off > p->stack_len || p->stack_len - off < sizeof(Dwarf_Word)) return false;
  memcpy(result, p->stack + off, sizeof(Dwarf_Word));
  return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg) {
  struct proc *p = thread_arg;
  Dwarf_Word r[2] = { p->regs[2], p->regs[1] }; /* rbp, rsp */
  if (!dwfl_thread_state_registers(thread, DW_RBP, 2, r)) return false;
  dwfl_thread_state_register_pc(thread, p->regs[0]);
  return true;
}

static void detach(Dwfl *dwfl, void *dwfl_arg) { (void)dwfl; (void)dwfl_arg; }

static const Dwfl_Thread_Callbacks thread_callbacks = {
  .next_thread = next_thread,
  .get_thread = get_thread,
  .memory_read = memory_read,
  .set_initial_registers = set_initial_registers,
  .detach = detach,
};

static bool report_modules(struct proc *p) {
  dwfl_report_begin(p->dwfl);
  int r = dwfl_linux_proc_report(p->dwfl, p->pid);
  dwfl_report_end(p->dwfl, NULL, NULL);
  p->last_report_ns = now_ns();
  p->stale = false;
  return r == 0;
}

static void proc_free(struct proc *p) {
  if (!p) return;
  if (p->dwfl) dwfl_end(p->dwfl);
  free(p);
}

static struct proc *proc_new(int pid) {
  struct proc *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->pid = pid;
  p->dwfl = dwfl_begin(&dwfl_callbacks);
  if (!p->dwfl || !report_modules(p) || !dwfl_attach_state(p->dwfl, NULL, pid, &thread_callbacks, p)) {
    proc_free(p);
    return NULL;
  }
  return p;
}

/* Finds or creates the cache entry of pid; evicts the least recently used when full. */
static struct proc *proc_get(int pid) {
  int free_slot = -1, lru = 0;
  for (int i = 0; i < MAX_PROCS; i++) {
    if (procs[i] && procs[i]->pid == pid) return procs[i];
    if (!procs[i]) { if (free_slot < 0) free_slot = i; }
    else if (procs[lru] == NULL || procs[i]->last_use < procs[lru]->last_use) lru = i;
  }
  struct proc *p = proc_new(pid);
  if (!p) return NULL;
  if (free_slot < 0) {
    proc_free(procs[lru]);
    free_slot = lru;
  }
  procs[free_slot] = p;
  return p;
}

struct walk {
  uint64_t *out;
  int n, max;
};

static int frame_cb(Dwfl_Frame *state, void *arg) {
  struct walk *w = arg;
  Dwarf_Addr pc;
  bool activation;
  if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
  w->out[w->n++] = pc;
  return w->n < w->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

int ls_unwind(int pid, const uint64_t regs[3], const uint8_t *stack, size_t stack_len,
              uint64_t stack_base_sp, uint64_t *pcs_out, int max) {
  if (pid <= 0 || !regs || !pcs_out || max <= 0 || (!stack && stack_len)) return -1;
  pthread_mutex_lock(&lock);
  struct proc *p = proc_get(pid);
  if (!p) {
    pthread_mutex_unlock(&lock);
    pcs_out[0] = regs[0];
    return 1;
  }
  p->last_use = ++use_clock;
  if ((p->stale || !dwfl_addrmodule(p->dwfl, regs[0])) && now_ns() - p->last_report_ns > REPORT_AGAIN_NS)
    report_modules(p);
  p->stack = stack;
  p->stack_len = stack ? stack_len : 0;
  p->stack_base = stack_base_sp;
  memcpy(p->regs, regs, sizeof p->regs);
  struct walk w = { pcs_out, 0, max };
  dwfl_getthread_frames(p->dwfl, pid, frame_cb, &w);
  /* Stopped in no known module: maybe a library dlopen()ed since the maps were read. */
  if (w.n > 0 && w.n < max && !dwfl_addrmodule(p->dwfl, pcs_out[w.n - 1]) &&
      now_ns() - p->last_report_ns > REPORT_AGAIN_NS) {
    report_modules(p);
    w.n = 0;
    dwfl_getthread_frames(p->dwfl, pid, frame_cb, &w);
  }
  p->stack = NULL;
  pthread_mutex_unlock(&lock);
  if (w.n == 0) {
    pcs_out[0] = regs[0];
    w.n = 1;
  }
  return w.n;
}

void ls_unwind_forget(int pid) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_PROCS; i++) {
    if (procs[i] && procs[i]->pid == pid) {
      proc_free(procs[i]);
      procs[i] = NULL;
    }
  }
  pthread_mutex_unlock(&lock);
}

void ls_unwind_refresh(int pid) {
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i] && procs[i]->pid == pid) {
      procs[i]->stale = true;
      procs[i]->last_report_ns = 0;
    }
  pthread_mutex_unlock(&lock);
}
