// leakscope in-process recorder: shared declarations.
//
// Layout: core.c (configuration, per-thread chunk buffers, flushing, timer thread, signals,
// fork/exit), enc.h (record encoding), stacks.c (unwinding, stack interning, module maps),
// sampling.c (byte sampler and the set of sampled addresses), hooks_heap.c (malloc family,
// mmap), hooks_apr.c (APR pools), hooks_proc.c (exec, dlopen).
#ifndef LK_H
#define LK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LK_EXPORT __attribute__((visibility("default")))
#define LK_LIKELY(x) __builtin_expect(!!(x), 1)
#define LK_UNLIKELY(x) __builtin_expect(!!(x), 0)

// Record types (docs/trace-format.md).
enum {
  R_CTX = 0x01, R_PROCESS = 0x02, R_FORK = 0x03, R_EXEC = 0x04, R_EXIT = 0x05,
  R_ALLOC = 0x10, R_FREE = 0x11, R_REALLOC = 0x12,
  R_POOL_CREATE = 0x20, R_POOL_DESTROY = 0x21, R_POOL_CLEAR = 0x22, R_POOL_ALLOC = 0x23,
  R_POOL_TAG = 0x25,
  R_MMAP = 0x30, R_MUNMAP = 0x31, R_RSS = 0x34,
  R_MARKER = 0x40, R_LOST = 0x41, R_MODULE = 0x50, R_FRAME = 0x60, R_STACK = 0x61,
};

#define LK_CHUNK_HDR 12
#define LK_CHUNK_PAYLOAD (256 * 1024)
#define LK_MAX_DEPTH 256
// The stack libunwind runs on (per buffer, below it in the same mapping, with a guard page).
// libunwind's walks take at most ~LK_SIDE_STACK / 4 (test/recorder/conformance: the measured
// high-water mark, LEAKSCOPE_SIDE_STACK_REPORT=1, must stay under half of it).
#define LK_SIDE_STACK (64 * 1024)

struct lk_walk;  // per-thread unwinding state (stacks.c)

// One chunk buffer. Owned by one thread, which appends records while holding `busy`; the timer
// thread (and fork/exit/crash paths) flush it by taking `busy` too. Never contended in steady
// state, so the hot path costs one uncontended atomic exchange.
typedef struct lk_buf {
  atomic_int busy;
  int in_use;             // owned by a live thread
  uint32_t pid, tid;
  uint64_t last_t;        // the chunk's running time
  size_t pos;             // payload bytes
  struct lk_buf *next;    // registry list (never unlinked; reused when in_use == 0)
  struct lk_walk *walk;   // the owner thread's unwinding state (reset when reused)
  void *side_top;         // top of the side stack (16-byte aligned)
  uint8_t *side_lo;       // its lowest byte (above the guard page)
  uint8_t data[LK_CHUNK_HDR + LK_CHUNK_PAYLOAD];
} lk_buf;

// Per-thread state. initial-exec TLS: no allocation, no lock on access.
typedef struct lk_thread {
  int guard;              // >0: inside our own machinery, do not record
  int in_apr;             // >0: inside an APR pool allocation (its mallocs are pool blocks)
  uint32_t tid;
  lk_buf *buf;
  int64_t sample_left;    // bytes until the next sampled allocation
  uint64_t rng;
  int registered;         // pthread key destructor installed
} lk_thread;

extern __thread lk_thread lk_ts;

// Global configuration and state (core.c).
extern int lk_state;          // 0 not initialised, 1 initialising, 2 recording, 3 stopped
extern int lk_fd;
extern _Atomic uint64_t lk_start_ns;
extern uint64_t lk_sample_bytes;  // 0 = record every allocation
extern int lk_depth;
extern uintptr_t lk_self_lo, lk_self_hi;  // our own code, skipped in stacks
extern char lk_trace_path[4096];          // the trace file (exec'd images append to it too)

void lk_init(void);
void lk_maybe_start(void);
uint64_t lk_now(void);
// Takes the calling thread's buffer (creating it on first use), with `busy` held, ready for a
// record of up to `need` bytes. NULL when recording is impossible (then nothing is held).
lk_buf *lk_begin(size_t need);
void lk_end(lk_buf *b);
// Makes room for `need` more bytes in a held buffer (flushes it when full).
void lk_reserve(lk_buf *b, size_t need);
void lk_flush_buf(lk_buf *b);
void lk_flush_all(int wait);
void lk_drain_marks(int final);      // writes the markers of SIGUSR2s received so far (final: exit, exec)

// The frame a hook was called from, taken in the exported hook itself: its return address, its
// canonical frame address (the caller's sp after the call), and the caller's rbp (saved by the
// hook's prologue: the library is built with frame pointers). Walks start there, so they never
// step through our own frames.
#define LK_CALLER_IP ((uintptr_t)__builtin_return_address(0))
#define LK_CALLER_SP ((uintptr_t)__builtin_dwarf_cfa())
#define LK_CALLER_FP (*(const uintptr_t *)__builtin_frame_address(0))
#define LK_CALLER LK_CALLER_IP, LK_CALLER_SP, LK_CALLER_FP

// stacks.c
void lk_stacks_init(void);
size_t lk_walk_size(void);
void lk_walk_reset(struct lk_walk *w);
// Call with b held; returns a stack id (0 = none), walking from the frame LK_CALLER names.
uint32_t lk_capture_stack_from(lk_buf *b, uintptr_t ip, uintptr_t sp, uintptr_t fp);
void lk_modules_scan(lk_buf *b);        // emits MODULE records for new mappings
void lk_stacks_atfork_prepare(void);
void lk_stacks_atfork_parent(void);
void lk_stacks_atfork_child(void);

// sampling.c
void lk_sampling_init(uint64_t bytes);
int lk_sample(size_t size);             // 1: record this allocation
static inline int lk_sample_inline(size_t n) {
  int64_t left = lk_ts.sample_left - (int64_t)n;
  if (LK_LIKELY(left > 0)) { lk_ts.sample_left = left; return 0; }
  return lk_sample(n);
}
// The sampled-address filter, read inline by free(): a zero counter means "not sampled".
extern _Atomic uint16_t *lk_sample_counts;
static inline uint64_t lk_sample_hash(uintptr_t a) {
  uint64_t x = (uint64_t)a;
  x ^= x >> 29; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 32;
  return x;
}
static inline int lk_maybe_sampled(uintptr_t a) {
  return atomic_load_explicit(&lk_sample_counts[(lk_sample_hash(a) >> 10) & ((1u << 20) - 1)], memory_order_acquire) != 0;
}
void lk_sampling_atfork_prepare(void);
void lk_sampling_atfork_release(void);
void lk_sampled_add(uintptr_t addr);
int lk_sampled_remove(uintptr_t addr);  // 1: addr was sampled (and is now forgotten)

// Event helpers (core.c). All take care of the guard, sampling and buffering.
// The allocation records take the allocating frame (LK_CALLER of the hook).
void lk_rec_alloc_from(void *p, size_t size, uintptr_t ip, uintptr_t sp, uintptr_t fp);  // the caller drew the sample
void lk_rec_free(void *p);
void lk_rec_realloc(void *old, void *p, size_t size, uintptr_t ip, uintptr_t sp, uintptr_t fp);
void lk_rec_mmap(void *p, size_t size, int prot, int flags, uintptr_t ip, uintptr_t sp, uintptr_t fp);
void lk_rec_munmap(void *p, size_t size);

// The flusher thread (core.c): stopped and joined around calls that need a single-threaded
// process; it restarts at the next record once released.
void lk_flusher_stop(void);
void lk_flusher_release(void);
// clone() without CLONE_VM (core.c): fork's handlers, and the child's end.
void lk_clone_prepare(void);
void lk_clone_parent(void);
void lk_clone_child(void);
void lk_clone_child_exit(int code);
uint32_t lk_current_pid(void);

// Signals (hooks_signal.c): the recorder's handlers are installed only over a default
// disposition, and the program keeps seeing (and setting) its own through sigaction()/signal().
struct sigaction;
void lk_signal_take(int sig, const struct sigaction *ours);
void lk_signal_default(int sig);  // puts the program's disposition back for real (a fatal signal)
int lk_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

// Raw helpers that never enter our hooks.
void *lk_raw_mmap(size_t size);
void lk_raw_munmap(void *p, size_t size);

#endif
