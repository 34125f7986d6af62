/* An Apache httpd module with known memory behaviour, for the verdict corpus (test/verdicts).
 * Built with apxs (apache2-dev); requests to a location with `SetHandler vd` are handled by the
 * path's last component:
 *   /vd/leak     2 KiB from the child's own pool (pchild) per request, never given back: a leak.
 *   /vd/stream?N N chunks, each a new brigade and a 512-byte string from the connection pool
 *                (tag "transaction"), flushed one by one: the pool grows during the connection
 *                and is cleared when it ends.
 *   /vd/cache?K  a cache in its own pool (tag "vd-cache", a child of pchild): a 1 KiB entry per
 *                new key, at most 32 keys, then only hits: it fills, then holds.
 *   /vd/ok       only the request pool: steady.
 * At start-up (post_config) it builds a 64 KiB table in pconf: held for the server's life. */

#include <stdlib.h>
#include <string.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "util_filter.h"
#include "apr_hash.h"
#include "apr_pools.h"
#include "apr_strings.h"

#define CACHE_MAX 32

static apr_pool_t *vd_child_pool;
static apr_pool_t *vd_cache_pool;
static apr_hash_t *vd_cache;
static void *vd_table[256];

static void vd_child_init(apr_pool_t *pchild, server_rec *s)
{
  (void)s;
  vd_child_pool = pchild;
  apr_pool_create(&vd_cache_pool, pchild);
  apr_pool_tag(vd_cache_pool, "vd-cache");
  vd_cache = apr_hash_make(vd_cache_pool);
}

static __attribute__((noinline)) void *vd_startup_entry(apr_pool_t *p, int i)
{
  char *e = apr_palloc(p, 256);
  memset(e, i, 256);
  return e;
}

static int vd_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
  (void)plog; (void)ptemp; (void)s;
  for (int i = 0; i < 256; i++) vd_table[i] = vd_startup_entry(pconf, i);
  return OK;
}

static __attribute__((noinline)) void vd_leak(request_rec *r)
{
  char *kept = apr_palloc(vd_child_pool, 2048);
  memset(kept, 0x5a, 2048);
  (void)r;
}

static __attribute__((noinline)) int vd_cache_get(const char *key)
{
  if (apr_hash_get(vd_cache, key, APR_HASH_KEY_STRING)) return 1;
  if (apr_hash_count(vd_cache) >= CACHE_MAX) return 0;
  char *entry = apr_palloc(vd_cache_pool, 1024);
  memset(entry, 0x11, 1024);
  apr_hash_set(vd_cache, apr_pstrdup(vd_cache_pool, key), APR_HASH_KEY_STRING, entry);
  return 1;
}

static __attribute__((noinline)) apr_status_t vd_stream_chunk(request_rec *r, int i)
{
  conn_rec *c = r->connection;
  apr_bucket_brigade *bb = apr_brigade_create(c->pool, c->bucket_alloc);
  char *chunk = apr_palloc(c->pool, 512);
  memset(chunk, 'a' + i % 26, 511);
  chunk[511] = '\n';
  APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(chunk, 512, c->bucket_alloc));
  APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
  return ap_pass_brigade(r->output_filters, bb);
}

static int vd_handler(request_rec *r)
{
  if (!r->handler || strcmp(r->handler, "vd") != 0) return DECLINED;
  const char *what = strrchr(r->uri, '/');
  what = what ? what + 1 : r->uri;
  ap_set_content_type(r, "text/plain");
  if (strcmp(what, "leak") == 0) {
    vd_leak(r);
  } else if (strcmp(what, "stream") == 0) {
    int n = r->args ? atoi(r->args) : 10;
    for (int i = 0; i < n; i++)
      if (vd_stream_chunk(r, i) != APR_SUCCESS) return OK;
    return OK;
  } else if (strcmp(what, "cache") == 0) {
    vd_cache_get(r->args ? r->args : "");
  }
  ap_rputs("ok\n", r);
  return OK;
}

static void vd_register_hooks(apr_pool_t *p)
{
  (void)p;
  ap_hook_post_config(vd_post_config, NULL, NULL, APR_HOOK_MIDDLE);
  ap_hook_child_init(vd_child_init, NULL, NULL, APR_HOOK_MIDDLE);
  ap_hook_handler(vd_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA vd_module = {
  STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, vd_register_hooks
};
