/* A leaking Apache httpd module for the agent tests (test/agent): requests to a location with
 * `SetHandler leaky` take 200 bytes from a pool of the child's ("leaky", made under pchild at
 * the first such request) and never give them back, so that pool grows by a request's worth
 * each time (a size read from the pool's node ring: 200 bytes keep its 8 KiB nodes under the
 * reader's 128-node walk for a test's length). With `SetHandler leaky-pchild` the 200 bytes come
 * from pchild itself (the child's pool, made when the child started: a server running before the
 * agent attaches has it already, so the agent finds it alive instead of seeing it made). Every
 * other request declines. Built with apxs (apache2-dev). */

#include <string.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "apr_pools.h"

static apr_pool_t *leaky_child_pool;
static apr_pool_t *leaky_pool;

static void leaky_child_init(apr_pool_t *pchild, server_rec *s)
{
  (void)s;
  leaky_child_pool = pchild;
}

static int leaky_handler(request_rec *r)
{
  char *kept;
  if (!r->handler) return DECLINED;
  if (strcmp(r->handler, "leaky-pchild") == 0) {
    kept = apr_palloc(leaky_child_pool, 200);
    memset(kept, 0x5b, 200);
    ap_set_content_type(r, "text/plain");
    ap_rputs("ok\n", r);
    return OK;
  }
  if (strcmp(r->handler, "leaky") != 0) return DECLINED;
  if (!leaky_pool) {
    if (apr_pool_create(&leaky_pool, leaky_child_pool) != APR_SUCCESS) return HTTP_INTERNAL_SERVER_ERROR;
    apr_pool_tag(leaky_pool, "leaky");
  }
  kept = apr_palloc(leaky_pool, 200);
  memset(kept, 0x5a, 200);
  ap_set_content_type(r, "text/plain");
  ap_rputs("ok\n", r);
  return OK;
}

static void leaky_register_hooks(apr_pool_t *p)
{
  (void)p;
  ap_hook_child_init(leaky_child_init, NULL, NULL, APR_HOOK_MIDDLE);
  ap_hook_handler(leaky_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA leaky_module = {
  STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, leaky_register_hooks
};
