/* att-mpool.h: the small pool allocator shared by our attach test programs (att-pool.c,
 * att-server.c); profile: test/programs/att-pool.profile.json. A pool is a list of blocks
 * (next, last, end) behind a header (blocks, parent, tag, child, sibling). */
#ifndef ATT_MPOOL_H
#define ATT_MPOOL_H
#include <stdlib.h>

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

#endif
