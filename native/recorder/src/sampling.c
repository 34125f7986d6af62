// Sampling (`--sample BYTES`): an allocation of n bytes is recorded with probability
// 1 - exp(-n / BYTES), as tcmalloc does it: each thread counts down an exponentially
// distributed number of bytes (memoryless, so the per-allocation probability is exact).
//
// Frees are recorded only for sampled addresses. The set of sampled live addresses is a
// counting filter (one 16-bit counter per hash bucket, read without a lock, so the free of an
// unsampled address costs one load) in front of sharded, spin-locked address lists.
#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "lk.h"

#define CNT_BITS 20
#define SHARDS 1024

typedef struct {
  atomic_int lock;
  uint32_t n, cap;
  uintptr_t *addrs;
} shard;

_Atomic uint16_t *lk_sample_counts;
#define g_counts lk_sample_counts
static shard *g_shards;
#define hash_addr lk_sample_hash

void lk_sampling_init(uint64_t bytes) {
  if (!bytes) return;
  g_shards = lk_raw_mmap(sizeof(shard) * SHARDS);
  _Atomic uint16_t *counts = lk_raw_mmap(sizeof(uint16_t) << CNT_BITS);
  if (!counts || !g_shards) return;
  g_counts = counts;
  lk_sample_bytes = bytes;
}

static double next_uniform(void) {
  if (!lk_ts.rng) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lk_ts.rng = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ ((uint64_t)lk_ts.tid << 32) ^ (uint64_t)(uintptr_t)&ts;
    if (!lk_ts.rng) lk_ts.rng = 1;
  }
  uint64_t x = lk_ts.rng;  // xorshift64*
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  lk_ts.rng = x;
  return ((double)((x * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;  // (0,1)
}

static int64_t draw(void) {
  double v = -log(next_uniform()) * (double)lk_sample_bytes;
  return v > 9e18 ? INT64_MAX : (int64_t)v + 1;
}

int lk_sample(size_t size) {
  if (LK_UNLIKELY(!lk_ts.rng)) lk_ts.sample_left = draw();
  lk_ts.sample_left -= (int64_t)size;
  if (lk_ts.sample_left > 0) return 0;
  lk_ts.sample_left = draw();
  return 1;
}

static void lock(shard *s) {
  for (int spins = 0; atomic_exchange_explicit(&s->lock, 1, memory_order_acquire); spins++)
    if (spins > 64) sched_yield();
}
static void unlock(shard *s) { atomic_store_explicit(&s->lock, 0, memory_order_release); }

void lk_sampled_add(uintptr_t addr) {
  uint64_t h = hash_addr(addr);
  shard *s = &g_shards[h & (SHARDS - 1)];
  lock(s);
  if (s->n == s->cap) {
    uint32_t ncap = s->cap ? s->cap * 2 : 64;
    uintptr_t *na = lk_raw_mmap(ncap * sizeof *na);
    if (!na) { unlock(s); return; }
    if (s->n) memcpy(na, s->addrs, s->n * sizeof *na);
    if (s->cap) lk_raw_munmap(s->addrs, s->cap * sizeof *na);
    s->addrs = na;
    s->cap = ncap;
  }
  s->addrs[s->n++] = addr;
  atomic_fetch_add_explicit(&g_counts[(h >> 10) & ((1u << CNT_BITS) - 1)], 1, memory_order_release);
  unlock(s);
}

int lk_sampled_remove(uintptr_t addr) {
  uint64_t h = hash_addr(addr);
  _Atomic uint16_t *c = &g_counts[(h >> 10) & ((1u << CNT_BITS) - 1)];
  if (LK_LIKELY(atomic_load_explicit(c, memory_order_acquire) == 0)) return 0;
  shard *s = &g_shards[h & (SHARDS - 1)];
  int found = 0;
  lock(s);
  for (uint32_t i = s->n; i-- > 0;) {
    if (s->addrs[i] == addr) {
      s->addrs[i] = s->addrs[--s->n];
      atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
      found = 1;
      break;
    }
  }
  unlock(s);
  return found;
}

// Fork: no shard may stay locked in the child.
void lk_sampling_atfork_prepare(void);
void lk_sampling_atfork_release(void);
void lk_sampling_atfork_prepare(void) {
  if (!lk_sample_bytes) return;
  for (int i = 0; i < SHARDS; i++) lock(&g_shards[i]);
}
void lk_sampling_atfork_release(void) {
  if (!lk_sample_bytes) return;
  for (int i = 0; i < SHARDS; i++) unlock(&g_shards[i]);
}
