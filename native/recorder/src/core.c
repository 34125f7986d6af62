// Recorder core: configuration, the trace file, per-thread chunk buffers, the flush timer,
// signals (snapshot and crash), fork and exit.
//
// Writing model: every thread appends records to its own buffer (lk_buf) and writes it as one
// chunk with one write() on an O_APPEND descriptor, so chunks of threads and of forked processes
// interleave in one file without a lock. A timer thread flushes every buffer at least every
// 500 ms, so a process that dies without warning (OOM kill) loses at most about a second.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "enc.h"
#include "lk.h"

__thread lk_thread lk_ts;
int lk_state;
int lk_fd = -1;
_Atomic uint64_t lk_start_ns;  // moved back 1 ns by each marker (on_snapshot)
uint64_t lk_sample_bytes;
int lk_depth = 64;
uintptr_t lk_self_lo, lk_self_hi;
char lk_trace_path[PATH_MAX];

static _Atomic(lk_buf *) g_bufs;       // every buffer ever made; push-front, never unlinked
static pthread_mutex_t g_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t g_key;
static sem_t g_flush_sem;
static atomic_int g_timer_running;   // the flusher thread exists (in this process)
static atomic_int g_timer_stop;      // asks it to end (lk_flusher_stop)
static atomic_int g_timer_hold;      // >0: a namespace call is in progress: do not start it
static atomic_int g_timer_tid;
static int g_no_flusher;             // a clone() child: flushes only when buffers fill and at exit
static pthread_t g_timer_th;
static pthread_mutex_t g_timer_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t g_pid;
static uint64_t g_flush_ms = 500;   // LEAKSCOPE_FLUSH_MS (tests of snapshot set it high)
static uint32_t g_crc_table[8][256];

// --- small helpers ------------------------------------------------------------------------

void *lk_raw_mmap(size_t size) {
  long r = syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r < 0 && r > -4096) return NULL;
  return (void *)r;
}

void lk_raw_munmap(void *p, size_t size) { syscall(SYS_munmap, p, size); }


// Event times come from CLOCK_MONOTONIC_COARSE: the same clock as CLOCK_MONOTONIC at the
// kernel tick's resolution (a few ms, plenty for leak and growth analysis), read in a few ns
// where a precise reading costs ~25 ns, a large share of a recorded malloc.
uint64_t lk_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  uint64_t n = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  uint64_t start = atomic_load_explicit(&lk_start_ns, memory_order_relaxed);
  return n > start ? n - start : 0;
}

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    g_crc_table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) g_crc_table[t][i] = (g_crc_table[t - 1][i] >> 8) ^ g_crc_table[0][g_crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = g_crc_table[7][lo & 0xFF] ^ g_crc_table[6][(lo >> 8) & 0xFF] ^ g_crc_table[5][(lo >> 16) & 0xFF] ^ g_crc_table[4][lo >> 24] ^
        g_crc_table[3][hi & 0xFF] ^ g_crc_table[2][(hi >> 8) & 0xFF] ^ g_crc_table[1][(hi >> 16) & 0xFF] ^ g_crc_table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = g_crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void write_all(const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(lk_fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // disk full or closed: drop, never disturb the program
    p += w; n -= (size_t)w;
  }
}

// --- buffers ------------------------------------------------------------------------------

static void start_chunk(lk_buf *b) {
  b->pos = 0;
  b->last_t = 0;
  b->pid = g_pid;
  b->tid = lk_ts.tid;
  lk_u8(b, R_CTX);
  lk_var(b, b->pid);
  lk_var(b, b->tid);
}

void lk_flush_buf(lk_buf *b) {
  if (b->pos == 0 || lk_fd < 0) { b->pos = 0; return; }
  memcpy(b->data, "LSCK", 4);
  put_u32(b->data + 4, (uint32_t)b->pos);
  put_u32(b->data + 8, crc32(b->data + LK_CHUNK_HDR, b->pos));
  int saved = errno;
  write_all(b->data, LK_CHUNK_HDR + b->pos);
  errno = saved;
  b->pos = 0;
}

static int try_acquire(lk_buf *b, int wait_ms) {
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&b->busy, &expected, 1, memory_order_acquire, memory_order_relaxed)) return 1;
  for (int i = 0; i < wait_ms * 10; i++) {
    struct timespec d = {0, 100000};
    nanosleep(&d, NULL);
    expected = 0;
    if (atomic_compare_exchange_strong_explicit(&b->busy, &expected, 1, memory_order_acquire, memory_order_relaxed)) return 1;
  }
  return 0;
}

static void release(lk_buf *b) { atomic_store_explicit(&b->busy, 0, memory_order_release); }

static void thread_gone(void *unused) {
  lk_buf *b = lk_ts.buf;
  if (!b) return;
  lk_ts.guard++;
  if (try_acquire(b, 1000)) {
    lk_flush_buf(b);
    b->in_use = 0;
    lk_ts.buf = NULL;
    release(b);
  }
  lk_ts.guard--;
}

// One mapping per buffer: a guard page, the side stack (stacks.c runs libunwind there), the
// buffer, then the thread's unwinding state. Nothing of it is on the thread's own stack or in TLS.
static lk_buf *new_buf(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t head = page + LK_SIDE_STACK, body = (sizeof(lk_buf) + 63) & ~(size_t)63;
  uint8_t *base = lk_raw_mmap(head + body + lk_walk_size());
  if (!base) return NULL;
  syscall(SYS_mprotect, base, page, PROT_NONE);
  lk_buf *b = (lk_buf *)(base + head);
  b->side_lo = base + page;
  b->side_top = base + head;
  b->walk = (struct lk_walk *)(base + head + body);
  return b;
}

static lk_buf *thread_buf(void) {
  if (!lk_ts.tid) lk_ts.tid = (uint32_t)syscall(SYS_gettid);
  if (!lk_ts.registered) {
    lk_ts.registered = 1;
    pthread_setspecific(g_key, (void *)1);  // runs thread_gone at thread exit
  }
  lk_buf *b;
  pthread_mutex_lock(&g_reg_mu);
  for (b = atomic_load(&g_bufs); b; b = b->next)
    if (!b->in_use) break;
  if (b) {
    b->in_use = 1;
  } else if ((b = new_buf()) != NULL) {
    b->in_use = 1;
    b->next = atomic_load(&g_bufs);
    atomic_store_explicit(&g_bufs, b, memory_order_release);
  }
  pthread_mutex_unlock(&g_reg_mu);
  if (!b) return NULL;
  // A reused buffer may still hold a dead thread's last records, and its walks.
  while (atomic_exchange_explicit(&b->busy, 1, memory_order_acquire)) sched_yield();
  lk_flush_buf(b);
  lk_walk_reset(b->walk);
  release(b);
  lk_ts.buf = b;
  return b;
}

lk_buf *lk_begin(size_t need) {
  lk_buf *b = lk_ts.buf;
  if (LK_UNLIKELY(!b) && !(b = thread_buf())) return NULL;
  for (int spins = 0; atomic_exchange_explicit(&b->busy, 1, memory_order_acquire); spins++)
    if (spins > 64) sched_yield();
  if (b->pos == 0 || b->pid != g_pid) start_chunk(b);
  if (b->pos + need > LK_CHUNK_PAYLOAD) {
    lk_flush_buf(b);
    start_chunk(b);
  }
  return b;
}

void lk_end(lk_buf *b) { release(b); }

// lk_begin's common case, inlined into the allocation and free records: the thread's buffer
// exists, is free, belongs to this process and has room.
static inline lk_buf *begin_hot(size_t need) {
  lk_buf *b = lk_ts.buf;
  if (LK_LIKELY(b != NULL) && LK_LIKELY(!atomic_exchange_explicit(&b->busy, 1, memory_order_acquire))) {
    if (LK_LIKELY(b->pos != 0 && b->pid == g_pid && b->pos + need <= LK_CHUNK_PAYLOAD)) return b;
    release(b);
  }
  return lk_begin(need);
}

void lk_reserve(lk_buf *b, size_t need) {
  if (b->pos + need > LK_CHUNK_PAYLOAD) {
    lk_flush_buf(b);
    start_chunk(b);
  }
}

void lk_flush_all(int wait_ms) {
  for (lk_buf *b = atomic_load_explicit(&g_bufs, memory_order_acquire); b; b = b->next) {
    if (b->pos == 0) continue;
    if (try_acquire(b, wait_ms)) {
      lk_flush_buf(b);
      release(b);
    }
  }
}

// --- events -------------------------------------------------------------------------------

static void start_timer(void);

// Every recording path checks that the flush timer runs (it does not survive fork).
static inline void timer_check(void) {
  if (LK_UNLIKELY(!atomic_load_explicit(&g_timer_running, memory_order_relaxed))) start_timer();
}

void lk_rec_alloc_from(void *p, size_t size, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  if (lk_sample_bytes) lk_sampled_add((uintptr_t)p);  // the caller drew the sample
  timer_check();
  uint64_t t = lk_now();
  lk_buf *b = begin_hot(48);
  if (!b) return;
  uint32_t st = lk_capture_stack_from(b, ip, sp, fp);
  lk_reserve(b, 48);
  int64_t dt = (int64_t)(t - b->last_t);
  b->last_t = t;
  uint8_t *w = lk_put_ev(lk_cur(b), R_ALLOC, dt);
  w = lk_put_var(w, (uintptr_t)p);
  w = lk_put_var(w, size);
  w = lk_put_var(w, st);
  lk_set_end(b, w);
  lk_end(b);
}


void lk_rec_free(void *p) {
  if (lk_sample_bytes && !lk_sampled_remove((uintptr_t)p)) return;
  timer_check();
  uint64_t t = lk_now();
  lk_buf *b = begin_hot(24);
  if (!b) return;
  int64_t dt = (int64_t)(t - b->last_t);
  b->last_t = t;
  uint8_t *w = lk_put_ev(lk_cur(b), R_FREE, dt);
  w = lk_put_var(w, (uintptr_t)p);
  lk_set_end(b, w);
  lk_end(b);
}

void lk_rec_realloc(void *old, void *p, size_t size, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  int old_known = 1, new_known = 1;
  if (lk_sample_bytes) {
    old_known = old ? lk_sampled_remove((uintptr_t)old) : 0;
    new_known = p ? lk_sample(size) : 0;
    if (new_known) lk_sampled_add((uintptr_t)p);
    if (!old_known && !new_known) return;
    if (old_known && !new_known) {
      uint64_t t = lk_now();
      lk_buf *b = lk_begin(24);
      if (!b) return;
      lk_ev(b, R_FREE, t);
      lk_var(b, (uintptr_t)old);
      lk_end(b);
      return;
    }
  }
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(64);
  if (!b) return;
  uint32_t st = p ? lk_capture_stack_from(b, ip, sp, fp) : 0;
  lk_reserve(b, 64);
  lk_ev(b, R_REALLOC, t);
  lk_var(b, old_known ? (uintptr_t)old : 0);
  lk_var(b, (uintptr_t)p);
  lk_var(b, p ? size : 0);
  lk_var(b, st);
  lk_end(b);
}

void lk_rec_mmap(void *p, size_t size, int prot, int flags, uintptr_t ip, uintptr_t sp, uintptr_t fp) {
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(64);
  if (!b) return;
  uint32_t st = lk_capture_stack_from(b, ip, sp, fp);
  lk_reserve(b, 64);
  lk_ev(b, R_MMAP, t);
  lk_var(b, (uintptr_t)p);
  lk_var(b, size);
  lk_var(b, (uint32_t)prot);
  lk_var(b, (uint32_t)flags);
  lk_var(b, st);
  lk_end(b);
}

void lk_rec_munmap(void *p, size_t size) {
  uint64_t t = lk_now();
  lk_buf *b = lk_begin(32);
  if (!b) return;
  lk_ev(b, R_MUNMAP, t);
  lk_var(b, (uintptr_t)p);
  lk_var(b, size);
  lk_end(b);
}

static void rec_exit(int code, int inside) {
  lk_buf *b = lk_ts.buf;
  // A fault inside our code leaves this thread's buffer held, by this thread: its records are
  // whole (records are encoded into it, nothing there faults), so EXIT is appended after them.
  if (b && !try_acquire(b, 20) && !inside) return;
  if (!b && !(b = lk_begin(32))) return;
  if (b->pos == 0 || b->pid != g_pid) start_chunk(b);
  lk_reserve(b, 32);
  lk_ev(b, R_EXIT, lk_now());
  lk_svar(b, code);
  lk_end(b);
}

// LEAKSCOPE_SIDE_STACK_REPORT=1 (tests): at the end, how much of the side stacks libunwind used
// (the deepest non-zero byte: the stacks are fresh zeroed pages), on stderr.
static int g_side_report;
static void side_stack_report(void) {
  if (!g_side_report) return;
  size_t most = 0;
  for (lk_buf *b = atomic_load_explicit(&g_bufs, memory_order_acquire); b; b = b->next) {
    const uint8_t *p = b->side_lo, *top = (const uint8_t *)b->side_top;
    while (p < top && *p == 0) p++;
    if ((size_t)(top - p) > most) most = (size_t)(top - p);
  }
  char msg[128];
  int n = snprintf(msg, sizeof msg, "leakscope: side stack high-water %zu of %d bytes\n", most, LK_SIDE_STACK);
  if (write(2, msg, (size_t)n)) {}
}

// Stops recording, writes out every thread's records, then EXIT as the process's last chunk
// (readers fold chunks in file order, so nothing of this process may follow it).
static void finish(int code, int wait_ms, int inside) {
  lk_drain_marks(1);
  lk_state = 3;
  lk_flush_all(wait_ms);
  rec_exit(code, inside);
  if (lk_ts.buf) lk_flush_all(wait_ms);
  if (inside && lk_ts.buf) lk_flush_buf(lk_ts.buf);
  side_stack_report();
}

// --- the process record -------------------------------------------------------------------

static size_t read_file(const char *path, char *out, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, out + n, cap - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  return n;
}

static void command_line(char *out, size_t cap) {
  size_t n = read_file("/proc/self/cmdline", out, cap - 1);
  while (n > 0 && out[n - 1] == '\0') n--;
  for (size_t i = 0; i < n; i++)
    if (out[i] == '\0') out[i] = ' ';
  out[n] = '\0';
}

static void exe_path(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  out[n > 0 ? n : 0] = '\0';
}

static void rec_process(int exec_of_traced) {
  static char cmd[4096], exe[PATH_MAX];
  command_line(cmd, sizeof cmd);
  exe_path(exe, sizeof exe);
  lk_buf *b = lk_begin(sizeof cmd + sizeof exe + 64);
  if (!b) return;
  uint64_t t = lk_now();
  if (exec_of_traced) {
    lk_ev(b, R_EXEC, t);
    lk_str(b, exe, sizeof exe);
    lk_str(b, cmd, sizeof cmd);
  } else {
    lk_ev(b, R_PROCESS, t);
    lk_var(b, (uint32_t)getppid());
    lk_str(b, cmd, sizeof cmd);
    lk_str(b, exe, sizeof exe);
  }
  lk_modules_scan(b);
  lk_end(b);
}

// --- the trace file -----------------------------------------------------------------------

static uint64_t env_u64(const char *name, uint64_t def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  return *end ? def : (uint64_t)v;
}

static size_t json_str(char *out, size_t cap, const char *s) {
  size_t n = 0;
  if (n < cap) out[n++] = '"';
  for (; *s && n + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { out[n++] = '\\'; out[n++] = (char)c; }
    else if (c < 0x20) n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
    else out[n++] = (char)c;
  }
  if (n < cap) out[n++] = '"';
  return n;
}

// Only when the recorder is used without `leakscope run` (which writes the header itself).
static void write_header(void) {
  static char meta[8192], cmd[4096], host[256];
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  command_line(cmd, sizeof cmd);
  gethostname(host, sizeof host - 1);
  size_t n = (size_t)snprintf(meta, sizeof meta,
      "{\"format\":1,\"clock\":\"ns\",\"source\":\"recorder\",\"startWallMs\":%llu,\"startMonoNs\":\"%llu\",",
      (unsigned long long)wall.tv_sec * 1000ull + (unsigned long long)wall.tv_nsec / 1000000ull,
      (unsigned long long)lk_start_ns);
  uint64_t sample = env_u64("LEAKSCOPE_SAMPLE", 0);
  if (sample) n += (size_t)snprintf(meta + n, sizeof meta - n, "\"sampleBytes\":%llu,", (unsigned long long)sample);
  n += (size_t)snprintf(meta + n, sizeof meta - n, "\"command\":");
  n += json_str(meta + n, sizeof meta - n - 200, cmd);
  n += (size_t)snprintf(meta + n, sizeof meta - n, ",\"hostname\":");
  n += json_str(meta + n, sizeof meta - n - 2, host);
  meta[n++] = '}';
  uint8_t head[12];
  memcpy(head, "LSTRACE1", 8);
  put_u32(head + 8, (uint32_t)n);
  uint8_t crc[4];
  put_u32(crc, crc32((uint8_t *)meta, n));
  write_all(head, 12);
  write_all((uint8_t *)meta, n);
  write_all(crc, 4);
}

static int open_trace(void) {
  char def[64];
  const char *path = getenv("LEAKSCOPE_TRACE");
  if (!path || !*path) {
    snprintf(def, sizeof def, "leakscope-%u.lstrace", g_pid);
    path = def;
  }
  // Never through a symbolic link, never into anything but a plain file: a user who can write
  // to the trace's directory must not make a root-run program append to a file of their choice
  // (O_EXCL refuses a planted link on creation; O_NOFOLLOW when the file is there already, as
  // `leakscope run` creates it and exec'd images reopen it).
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  int created = fd >= 0;
  if (fd < 0) fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  const char *why = fd < 0 ? (errno == ELOOP ? "it is a symbolic link" : strerror(errno)) : NULL;
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(fd);
    fd = -1;
    why = "not a regular file";
  }
  if (fd < 0) {
    char msg[600];
    int n = snprintf(msg, sizeof msg, "leakscope: cannot open trace %.500s: %s (not recording)\n", path, why);
    if (write(2, msg, (size_t)n)) {}
    return -1;
  }
  if (!created) fcntl(fd, F_SETFL, O_APPEND);  // blocking again (O_NONBLOCK only kept a FIFO from hanging the open)
  // Keep it out of the way of programs that expect low descriptors to be theirs.
  int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
  if (hi >= 0) { close(fd); fd = hi; }
  lk_fd = fd;
  snprintf(lk_trace_path, sizeof lk_trace_path, "%s", path);
  if (created) write_header();
  return 0;
}

// --- signals, timer, fork, exit ------------------------------------------------------------

static const int k_fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM, SIGINT, SIGHUP, SIGQUIT};

// SIGUSR2 markers. The handler only takes the time and the sender's kind into a slot and posts
// the semaphore (all async-signal-safe); the flusher thread writes the MARKER records, before the
// flush that follows. Slots are claimed by a ticket; a slot is ready once its `seq` is the ticket
// + 1. A signal that finds all LK_MARKS slots waiting takes no ticket: it is counted, and the
// drain writes the count as a LOST record.
#define LK_MARKS 64
static struct { _Atomic uint64_t seq; uint64_t t; int queued; } g_marks[LK_MARKS];
static _Atomic uint64_t g_mark_head, g_mark_tail;
static atomic_uint g_marks_dropped;
static atomic_uint g_mark_count;  // markers written by this process (numbers the labels)

static void on_snapshot(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  uint64_t t = lk_now();
  // A marker splits the timeline: what the program records after it must be after it on this
  // clock, so a cut at the marker (t <= marker) leaves it out. The coarse clock alone does not
  // give that: events in the marker's tick share its time, and on a loaded VM here one server's
  // snapshot marker, the /quit sent after it was read back, its frees and its exit all had one
  // time (a stalled tick, tens of ms at least). So every later reading is moved on by 1 ns (the
  // start moves back): free for every other event, where a floor checked in lk_now cost ~4
  // instructions an allocation (+0.7% by callgrind).
  atomic_fetch_sub_explicit(&lk_start_ns, 1, memory_order_relaxed);
  uint64_t tk = atomic_load_explicit(&g_mark_head, memory_order_acquire);
  for (;;) {
    if (tk - atomic_load_explicit(&g_mark_tail, memory_order_acquire) >= LK_MARKS) {
      atomic_fetch_add(&g_marks_dropped, 1);
      tk = UINT64_MAX;
      break;
    }
    if (atomic_compare_exchange_weak_explicit(&g_mark_head, &tk, tk + 1, memory_order_acq_rel, memory_order_acquire)) break;
  }
  if (tk != UINT64_MAX) {
    g_marks[tk % LK_MARKS].t = t;
    // `leakscope snapshot` sends it with sigqueue and the value 1 (a plain kill() is SI_USER).
    g_marks[tk % LK_MARKS].queued = si && si->si_code == SI_QUEUE && si->si_value.sival_int == 1;
    atomic_store_explicit(&g_marks[tk % LK_MARKS].seq, tk + 1, memory_order_release);
  }
  sem_post(&g_flush_sem);
  errno = saved;
}

// lk_begin for the flusher's own records (markers, LOST, RSS), or NULL once the process is
// exiting: its EXIT record must stay its last.
static lk_buf *begin_recording(size_t n) {
  lk_buf *b = lk_begin(n);
  if (b && lk_state != 2) {
    lk_end(b);
    return NULL;
  }
  return b;
}

static void rec_marker(uint64_t t, const char *label) {
  lk_buf *b = begin_recording(96);
  if (!b) return;
  lk_ev(b, R_MARKER, t);
  lk_str(b, label, 47);
  lk_end(b);
}

static void rec_lost(uint64_t count, const char *reason) {
  lk_buf *b = begin_recording(96);
  if (!b) return;
  lk_ev(b, R_LOST, lk_now());
  lk_var(b, count);
  lk_str(b, reason, strlen(reason));
  lk_end(b);
}

// Drains one at a time: the flusher and the exit or exec path may drain at once, and a drainer
// delayed between claiming a slot and numbering it let the other number later signals first
// (a loaded run wrote "SIGUSR2 #11408" at the time of #11351). The thread draining, 0 if none.
static _Atomic int g_drain_owner;

// Writes the markers of the signals received so far, in the order of their tickets (flusher
// thread, or the exit or exec path: `final`). A handler between its ticket and its store
// (interrupted, or on another thread, descheduled) is waited for; the flusher leaves it and the
// markers behind it to its next drain, the final drain counts it lost after 10 ms.
void lk_drain_marks(int final) {
  int me = (int)syscall(SYS_gettid), cur = 0, spins = 0;
  while (!atomic_compare_exchange_strong(&g_drain_owner, &cur, me)) {
    if (cur == me) return;  // a fault inside this thread's own drain: its records are in flight
    // another drainer: wait for it (its work is short), but not for one that will never return
    if (++spins > 10000) break;
    struct timespec d = {0, 10000};
    nanosleep(&d, NULL);
    cur = 0;
  }
  unsigned dropped = atomic_exchange(&g_marks_dropped, 0);
  if (dropped) rec_lost(dropped, "SIGUSR2 markers: more than 64 signals between two flushes");
  for (;;) {
    uint64_t tail = atomic_load_explicit(&g_mark_tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&g_mark_head, memory_order_acquire);
    if (tail == head) break;
    int wait = 0;
    while (atomic_load_explicit(&g_marks[tail % LK_MARKS].seq, memory_order_acquire) != tail + 1 && wait < (final ? 1000 : 100)) {
      struct timespec d = {0, 10000};
      nanosleep(&d, NULL);
      wait++;
    }
    uint64_t t = g_marks[tail % LK_MARKS].t;
    int queued = g_marks[tail % LK_MARKS].queued;
    int ready = atomic_load_explicit(&g_marks[tail % LK_MARKS].seq, memory_order_acquire) == tail + 1;
    if (!ready && !final) break;  // the next drain takes it, in order
    if (!atomic_compare_exchange_strong(&g_mark_tail, &tail, tail + 1)) continue;
    if (!ready) {  // its handler's thread never finished it (stopped, or killed by the exit)
      rec_lost(1, "SIGUSR2 marker: its handler had not finished at exit or exec");
      continue;
    }
    // "snapshot #N" / "SIGUSR2 #N", N counting this process's markers (no stdio: the exit path
    // may run in a crash handler).
    char label[48], digits[12];
    const char *name = queued ? "snapshot #" : "SIGUSR2 #";
    size_t n = strlen(name), k = 0;
    memcpy(label, name, n);
    for (uint32_t v = atomic_fetch_add(&g_mark_count, 1) + 1; v; v /= 10) digits[k++] = (char)('0' + v % 10);
    while (k) label[n++] = digits[--k];
    label[n] = '\0';
    rec_marker(t, label);
  }
  cur = me;
  atomic_compare_exchange_strong(&g_drain_owner, &cur, 0);
}

static void on_fatal(int sig, siginfo_t *si, void *uc) {
  // Inside our own machinery when the signal came (a fault there): this thread's buffer may be
  // held by this very thread; rec_exit then takes it over instead of waiting for it.
  int inside = lk_ts.guard > 0;
  lk_ts.guard++;
  if (lk_state == 2 && (uint32_t)syscall(SYS_getpid) == g_pid) finish(128 + sig, 20, inside);
  lk_signal_default(sig);  // the program's own disposition (default): the signal does what it would
  // A fault the kernel raised happens again when the handler returns; one that a process sent
  // (kill, raise: si_code <= 0) must be sent again.
  if ((sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) && si && si->si_code > 0) return;
  raise(sig);
}

// Our handlers go only where the program left the default; the program still sees (and sets)
// its own dispositions through sigaction()/signal() (hooks_signal.c).
static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof k_fatal / sizeof k_fatal[0]; i++) lk_signal_take(k_fatal[i], &sa);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_snapshot;
  sa.sa_flags = SA_RESTART | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  lk_signal_take(SIGUSR2, &sa);
}

static void rec_rss(void) {
  char s[128];
  size_t n = read_file("/proc/self/statm", s, sizeof s - 1);
  s[n] = '\0';
  unsigned long long size = 0, rss = 0;
  if (sscanf(s, "%llu %llu", &size, &rss) != 2) return;
  lk_buf *b = begin_recording(32);
  if (!b) return;
  lk_ev(b, R_RSS, lk_now());
  lk_var(b, rss * (unsigned long long)sysconf(_SC_PAGESIZE));
  lk_end(b);
}

static void *timer_main(void *arg) {
  lk_ts.guard = 1;  // this thread's own allocations are ours
  atomic_store(&g_timer_tid, (int)syscall(SYS_gettid));
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  uint64_t last_rss = 0;
  for (;;) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += g_flush_ms / 1000;
    dl.tv_nsec += (long)(g_flush_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    sem_timedwait(&g_flush_sem, &dl);
    if (atomic_load(&g_timer_stop)) break;
    if (lk_state != 2) continue;
    lk_drain_marks(0);
    uint64_t now = lk_now();
    if (now - last_rss >= 1000000000ull || last_rss == 0) {
      rec_rss();
      last_rss = now ? now : 1;
    }
    lk_flush_all(50);
  }
  return NULL;
}

static void start_timer(void) {
  if (g_no_flusher || atomic_load(&g_timer_hold)) return;
  lk_ts.guard++;
  pthread_mutex_lock(&g_timer_mu);
  if (!atomic_load(&g_timer_running) && !atomic_load(&g_timer_hold)) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    atomic_store(&g_timer_stop, 0);
    atomic_store(&g_timer_tid, 0);
    if (pthread_create(&g_timer_th, &attr, timer_main, NULL) == 0) atomic_store(&g_timer_running, 1);
    pthread_attr_destroy(&attr);
  }
  pthread_mutex_unlock(&g_timer_mu);
  lk_ts.guard--;
}

// Before a call that needs a single-threaded process (unshare, setns): the flusher thread is
// stopped, joined, and waited for until the kernel no longer counts it (a joined thread can still
// be in the thread group for a moment). It restarts at the next record after lk_flusher_release.
// Only in the process that started it (a vfork child shares our memory, not our threads).
void lk_flusher_stop(void) {
  atomic_fetch_add(&g_timer_hold, 1);
  if ((uint32_t)syscall(SYS_getpid) != g_pid) return;
  lk_ts.guard++;
  pthread_mutex_lock(&g_timer_mu);
  if (atomic_load(&g_timer_running)) {
    atomic_store(&g_timer_stop, 1);
    sem_post(&g_flush_sem);
    pthread_join(g_timer_th, NULL);
    int tid = atomic_load(&g_timer_tid);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", tid);
    struct timespec d = {0, 200000};
    for (int i = 0; tid > 0 && i < 5000 && syscall(SYS_access, path, F_OK) == 0; i++) nanosleep(&d, NULL);
    atomic_store(&g_timer_running, 0);
    lk_flush_all(20);  // what it would have written
  }
  pthread_mutex_unlock(&g_timer_mu);
  lk_ts.guard--;
}

void lk_flusher_release(void) { atomic_fetch_sub(&g_timer_hold, 1); }

static void fork_prepare(void) {
  lk_ts.guard++;
  if (lk_state != 2) return;
  for (lk_buf *b = atomic_load(&g_bufs); b; b = b->next) {
    if (try_acquire(b, 1000)) {
      lk_flush_buf(b);
      b->in_use |= 2;  // held across the fork
    }
  }
  lk_stacks_atfork_prepare();
  lk_sampling_atfork_prepare();
  pthread_mutex_lock(&g_reg_mu);
}

static void fork_parent(void) {
  if (lk_state == 2) {
    pthread_mutex_unlock(&g_reg_mu);
    lk_sampling_atfork_release();
    lk_stacks_atfork_parent();
    for (lk_buf *b = atomic_load(&g_bufs); b; b = b->next)
      if (b->in_use & 2) { b->in_use &= ~2; release(b); }
  }
  lk_ts.guard--;
}

static void fork_child(void) {
  if (lk_state == 2) {
    uint32_t parent = g_pid;
    g_pid = (uint32_t)getpid();
    lk_ts.tid = (uint32_t)syscall(SYS_gettid);
    pthread_mutex_init(&g_reg_mu, NULL);
    lk_stacks_atfork_child();
    lk_sampling_atfork_release();
    // Only this thread survives: every other buffer is free (and was flushed in prepare).
    for (lk_buf *b = atomic_load(&g_bufs); b; b = b->next) {
      b->pos = 0;
      b->in_use = (b == lk_ts.buf) ? 1 : 0;
      release(b);
    }
    sem_init(&g_flush_sem, 0, 0);
    atomic_store(&g_timer_running, 0);
    atomic_store(&g_timer_hold, 0);
    pthread_mutex_init(&g_timer_mu, NULL);
    // Signals the parent received are the parent's markers; the child numbers its own.
    atomic_store(&g_mark_tail, atomic_load(&g_mark_head));
    atomic_store(&g_mark_count, 0);
    atomic_store(&g_drain_owner, 0);
    atomic_store(&g_marks_dropped, 0);
    lk_buf *b = lk_begin(32);
    if (b) {
      lk_ev(b, R_FORK, lk_now());
      lk_var(b, parent);
      lk_flush_buf(b);  // at once: a child may live shorter than a timer period
      lk_end(b);
    }
  }
  lk_ts.guard--;
}

// clone() without CLONE_VM makes a process as fork() does, but runs no atfork handlers: the
// clone hook (hooks_proc.c) runs ours around it. Such a child has no flusher thread (glibc's
// thread state is not reset by a raw clone): its buffers are written when full and at its end,
// which the hook records when the child's function returns (it leaves by the exit syscall).
void lk_clone_prepare(void) { fork_prepare(); }
void lk_clone_parent(void) { fork_parent(); }
void lk_clone_child(void) {
  g_no_flusher = 1;
  fork_child();
}
void lk_clone_child_exit(int code) {
  if (lk_state != 2) return;
  lk_ts.guard++;
  finish(code, 100, 0);
  lk_ts.guard--;
}

// The exit status reaches only on_exit handlers. Ours is registered before the loader's own
// finaliser (our constructor runs first), so it usually runs after every destructor, ours
// included: lk_fini flushes, on_exit writes EXIT and stops recording; whichever comes last wins.
static void on_exit_code(int code, void *arg) {
  if (lk_state != 2) return;
  lk_ts.guard++;
  finish(code, 100, 0);
  lk_ts.guard--;
}

// _exit skips on_exit handlers and destructors (forked children often leave this way).
LK_EXPORT void _exit(int code) {
  static void (*r_exit)(int);
  if (lk_state == 2 && !lk_ts.guard && (uint32_t)syscall(SYS_getpid) == g_pid) {
    lk_ts.guard++;
    finish(code, 100, 0);
    lk_ts.guard--;
  }
  if (!r_exit) r_exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
  if (r_exit) r_exit(code);
  syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

LK_EXPORT void _Exit(int code) { _exit(code); }

__attribute__((destructor)) static void lk_fini(void) {
  if (lk_state != 2) return;
  lk_ts.guard++;
  lk_flush_all(100);
  lk_ts.guard--;
}

// --- initialisation -----------------------------------------------------------------------


void lk_init(void) {
  if (lk_state != 0) return;
  lk_state = 1;
  lk_ts.guard++;
  crc_init();
  g_pid = (uint32_t)getpid();
  lk_ts.tid = (uint32_t)syscall(SYS_gettid);
  if (env_u64("LEAKSCOPE_DISABLE", 0)) goto off;
  lk_start_ns = env_u64("LEAKSCOPE_START_NS", 0);
  if (!lk_start_ns) {  // on the coarse clock events use, so the first ones are not before t = 0
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    lk_start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  }
  uint64_t sample = env_u64("LEAKSCOPE_SAMPLE", 0);
  lk_depth = (int)env_u64("LEAKSCOPE_DEPTH", 64);
  g_flush_ms = env_u64("LEAKSCOPE_FLUSH_MS", 500);
  g_side_report = (int)env_u64("LEAKSCOPE_SIDE_STACK_REPORT", 0);
  if (g_flush_ms < 10) g_flush_ms = 10;
  if (lk_depth < 1) lk_depth = 1;
  if (lk_depth > LK_MAX_DEPTH) lk_depth = LK_MAX_DEPTH;
  if (open_trace() != 0) goto off;
  pthread_key_create(&g_key, thread_gone);
  sem_init(&g_flush_sem, 0, 0);
  lk_sampling_init(sample);  // sets lk_sample_bytes once its tables exist (free() reads them)
  lk_stacks_init();
  install_signals();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  on_exit(on_exit_code, NULL);
  lk_state = 2;
  {
    const char *p = getenv("LEAKSCOPE_PID");
    rec_process(p && (uint32_t)strtoul(p, NULL, 10) == g_pid);
  }
  lk_flush_all(0);
  lk_ts.guard--;
  return;
off:
  lk_state = 3;
  lk_ts.guard--;
}

// Runs before main; allocations made earlier (other constructors, the loader) already
// initialised us lazily.
__attribute__((constructor)) static void lk_ctor(void) {
  lk_init();
  if (lk_state == 2) start_timer();
}

// The hooks call this on their slow path: initialise lazily, restart the timer after fork.
void lk_maybe_start(void);
void lk_maybe_start(void) {
  if (lk_state == 0) lk_init();
  if (lk_state == 2 && !atomic_load_explicit(&g_timer_running, memory_order_relaxed) && !lk_ts.guard) start_timer();
}

uint32_t lk_current_pid(void);
uint32_t lk_current_pid(void) { return g_pid; }
