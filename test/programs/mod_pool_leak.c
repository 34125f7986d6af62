/* A test module for httpd (built with apxs): leaks into the child's process pool (pchild) on
 * every request to /leak, and grows the connection's pool (prefork's "transaction" pool,
 * cleared when the connection ends) on every request to /grow. Each response names the
 * process and the pools it used, so a test knows the truth. */
#include <string.h>
#include <unistd.h>
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "apr_pools.h"

static apr_pool_t *child_pool;

static void leak_child_init(apr_pool_t *pchild, server_rec *s)
{
    (void)s;
    child_pool = pchild;
}

static int leak_handler(request_rec *r)
{
    void *p;
    if (r->handler == NULL || strcmp(r->handler, "pool-leak") != 0) return DECLINED;
    if (strcmp(r->uri, "/leak") == 0) {
        p = apr_palloc(child_pool, 2048); /* LEAK: pchild lives as long as the child */
        memset(p, 0x5a, 2048);
    } else if (strcmp(r->uri, "/grow") == 0) {
        p = apr_palloc(r->connection->pool, 4096); /* BOUNDED: cleared with the connection */
        memset(p, 0x5a, 4096);
    }
    ap_set_content_type(r, "text/plain");
    ap_rprintf(r, "pid %d pchild %pp conn %pp\n", (int)getpid(), (void *)child_pool, (void *)r->connection->pool);
    return OK;
}

static void leak_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_child_init(leak_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(leak_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA pool_leak_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, leak_hooks
};
