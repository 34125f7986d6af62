/* att-pool: a program with its own pool allocator (tests the user-profile path of
 * `leakscope attach`; profiles/allocators described in docs/allocator-profiles.md).
 *
 *   att-pool ITERATIONS SLEEP_MS LEAK_EVERY
 * Each iteration creates a request pool (child of a long-lived server pool), tags it,
 * allocates from it and destroys it; every LEAK_EVERY-th iteration leaky_handler() forgets to
 * destroy its pool, and leaky_malloc() forgets a 100-byte malloc. Prints "ready" once set up.
 * Built -O2 -fomit-frame-pointer like a distribution binary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct mp_block { struct mp_block *next; char *last; char *end; } mp_block_t;
typedef struct mp_pool {
  mp_block_t *blocks;      /* offset 0: block list (each block: next, last, end) */
  struct mp_pool *parent;  /* offset 8 */
  const char *tag;         /* offset 16 */
  struct mp_pool *child, *sibling;
} mp_pool_t;

#define NOINLINE __attribute__((noinline, used))

static mp_block_t *new_block(size_t size)
{
  mp_block_t *b = malloc(sizeof(*b) + size);
  if (!b) abort();
  b->next = NULL;
  b->last = (char *)(b + 1);
  b->end = b->last + size;
  return b;
}

NOINLINE mp_pool_t *mp_create(mp_pool_t *parent, size_t size)
{
  mp_pool_t *p = calloc(1, sizeof(*p));
  if (!p) abort();
  p->blocks = new_block(size);
  p->parent = parent;
  if (parent) { p->sibling = parent->child; parent->child = p; }
  return p;
}

NOINLINE void *mp_alloc(mp_pool_t *p, size_t n)
{
  n = (n + 15) & ~(size_t)15;
  mp_block_t *b = p->blocks;
  if ((size_t)(b->end - b->last) < n) {
    b = new_block(n > 4096 ? n : 4096);
    b->next = p->blocks;
    p->blocks = b;
  }
  void *r = b->last;
  b->last += n;
  return r;
}

NOINLINE void mp_tag(mp_pool_t *p, const char *tag) { p->tag = tag; }

static void unlink_child(mp_pool_t *p)
{
  if (!p->parent) return;
  mp_pool_t **pp = &p->parent->child;
  while (*pp && *pp != p) pp = &(*pp)->sibling;
  if (*pp) *pp = p->sibling;
}

NOINLINE void mp_clear(mp_pool_t *p)
{
  while (p->child) {
    mp_pool_t *c = p->child;
    p->child = c->sibling;
    c->parent = NULL;
    extern void mp_destroy(mp_pool_t *);
    mp_destroy(c);
  }
  mp_block_t *b = p->blocks->next;
  while (b) { mp_block_t *n = b->next; free(b); b = n; }
  p->blocks->next = NULL;
  p->blocks->last = (char *)(p->blocks + 1);
}

NOINLINE void mp_destroy(mp_pool_t *p)
{
  mp_clear(p);
  unlink_child(p);
  free(p->blocks);
  free(p);
}

static mp_pool_t *server_pool;
static volatile unsigned long sink;

NOINLINE void good_handler(int i)
{
  mp_pool_t *r = mp_create(server_pool, 1024);
  mp_tag(r, "request");
  for (int k = 0; k < 8; k++) sink += (unsigned long)mp_alloc(r, 200 + k * 100);
  mp_destroy(r);
}

NOINLINE void leaky_handler(int i)
{
  mp_pool_t *r = mp_create(server_pool, 2048);
  mp_tag(r, "leaky");
  for (int k = 0; k < 4; k++) sink += (unsigned long)mp_alloc(r, 300);
  /* forgot mp_destroy(r) */
}

NOINLINE void leaky_malloc(int i)
{
  char *p = malloc(100);
  if (!p) abort();
  memset(p, i, 100);
  sink += (unsigned long)p;
}

NOINLINE void balanced_malloc(int i)
{
  char *p = malloc(300);
  if (!p) abort();
  memset(p, i, 300);
  sink += (unsigned long)p[5];
  free(p);
}

int main(int argc, char **argv)
{
  long iters = argc > 1 ? atol(argv[1]) : 100;
  long sleep_ms = argc > 2 ? atol(argv[2]) : 10;
  long leak_every = argc > 3 ? atol(argv[3]) : 10;
  if (leak_every < 1) leak_every = 1;
  server_pool = mp_create(NULL, 8192);
  mp_tag(server_pool, "server");
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (long i = 0; iters < 0 || i < iters; i++) {
    good_handler(i);
    balanced_malloc(i);
    if (i % leak_every == leak_every - 1) { leaky_handler(i); leaky_malloc(i); }
    if (sleep_ms > 0) { struct timespec ts = { sleep_ms / 1000, (sleep_ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }
  }
  printf("done\n");
  fflush(stdout);
  return 0;
}
