/* A program with its own pool allocator (named like nginx's, so pool-aware sites apply) and known leaks, for the Valgrind XML source test.
 * - leak_pools(): 5 pools created per call, each with 3 x 100-byte allocations, never destroyed:
 *   per pool 1 block of 64 (the pool) + 3 blocks of 100 (its allocations).
 * - leak_plain(): 7 x malloc(48), never freed.
 * - ok_pools(): pools created and destroyed (no leak). */
#include <stdlib.h>
#include <string.h>

typedef struct block { struct block *next; } block_t;
typedef struct pool { block_t *blocks; char tag[48]; } pool_t;

__attribute__((noinline)) pool_t *ngx_create_pool(const char *tag) {
  pool_t *p = malloc(sizeof(pool_t) + 0);
  p->blocks = NULL;
  strncpy(p->tag, tag, sizeof p->tag - 1);
  p->tag[sizeof p->tag - 1] = 0;
  return p;
}

__attribute__((noinline)) void *ngx_palloc(pool_t *p, size_t n) {
  block_t *b = malloc(sizeof(block_t) + n);
  b->next = p->blocks;
  p->blocks = b;
  return b + 1;
}

__attribute__((noinline)) void ngx_destroy_pool(pool_t *p) {
  while (p->blocks) { block_t *b = p->blocks; p->blocks = b->next; free(b); }
  free(p);
}

static pool_t *lost[5];

__attribute__((noinline)) void leak_pools(void) {
  for (int i = 0; i < 5; i++) {
    pool_t *p = ngx_create_pool("request");
    for (int j = 0; j < 3; j++) memset(ngx_palloc(p, 92), j, 92);
    lost[i] = p;
  }
  for (int i = 0; i < 5; i++) lost[i] = NULL; /* drop the only references */
}

__attribute__((noinline)) void leak_plain(void) {
  for (int i = 0; i < 7; i++) {
    char *volatile q = malloc(48);
    q[0] = 1;
  }
}

__attribute__((noinline)) void ok_pools(void) {
  for (int i = 0; i < 4; i++) {
    pool_t *p = ngx_create_pool("ok");
    ngx_palloc(p, 200);
    ngx_destroy_pool(p);
  }
}

int main(void) {
  ok_pools();
  leak_pools();
  leak_plain();
  return 0;
}
