// An httpd module for the recorder's apache test: every request to a "rec-leaky" handler leaks
// 2 KiB into the child's process pool (pchild, from child_init). Built with apxs by
// test/recorder/apache.test.ts.
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "apr_strings.h"

static apr_pool_t *pchild_pool;

static void child_init(apr_pool_t *p, server_rec *s) { pchild_pool = p; }

static int handler(request_rec *r) {
  if (!r->handler || strcmp(r->handler, "rec-leaky")) return DECLINED;
  apr_pool_t *p = pchild_pool ? pchild_pool : r->server->process->pool;
  char *leak = apr_palloc(p, 2048);
  memset(leak, 1, 2048);
  ap_set_content_type(r, "text/plain");
  ap_rputs("leaked\n", r);
  return OK;
}


static void hooks(apr_pool_t *p) {
  ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
  ap_hook_handler(handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA rec_leaky_module = {STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, hooks};
