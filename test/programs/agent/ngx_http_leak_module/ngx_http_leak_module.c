/* A leaking nginx module for the agent tests (test/agent). Two content handlers:
 *   leak_keep;   each request creates a pool of its own and never destroys it (a leak: the pool
 *                class "created at ngx_http_leak_keep_handler" grows by a pool a request);
 *   leak_churn;  each request creates a pool and destroys it before replying (churn, no leak);
 *   leak_conn;   each request allocates 2000 bytes from its connection's pool, which lives as
 *                long as the keepalive connection does (a leak a walk of the pools from
 *                ngx_cycle's connections sees: the connection pools grow, no pool is made).
 * Built against Debian's nginx-dev sources with --with-compat (test/support/nginx-module.ts). */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

static char *ngx_http_leak_keep(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_leak_churn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_leak_conn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

static ngx_command_t ngx_http_leak_commands[] = {
  { ngx_string("leak_keep"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, ngx_http_leak_keep, 0, 0, NULL },
  { ngx_string("leak_churn"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, ngx_http_leak_churn, 0, 0, NULL },
  { ngx_string("leak_conn"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS, ngx_http_leak_conn, 0, 0, NULL },
  ngx_null_command
};

static ngx_http_module_t ngx_http_leak_module_ctx = { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };

ngx_module_t ngx_http_leak_module = {
  NGX_MODULE_V1, &ngx_http_leak_module_ctx, ngx_http_leak_commands, NGX_HTTP_MODULE,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NGX_MODULE_V1_PADDING
};

static ngx_int_t ngx_http_leak_reply(ngx_http_request_t *r)
{
  static u_char text[] = "ok\n";
  ngx_buf_t *b;
  ngx_chain_t out;
  ngx_int_t rc;

  if (ngx_http_discard_request_body(r) != NGX_OK) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  r->headers_out.status = NGX_HTTP_OK;
  r->headers_out.content_length_n = sizeof(text) - 1;
  rc = ngx_http_send_header(r);
  if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
  b = ngx_calloc_buf(r->pool);
  if (b == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  b->pos = text;
  b->last = text + sizeof(text) - 1;
  b->memory = 1;
  b->last_buf = 1;
  b->last_in_chain = 1;
  out.buf = b;
  out.next = NULL;
  return ngx_http_output_filter(r, &out);
}

static ngx_int_t __attribute__((noinline)) ngx_http_leak_keep_handler(ngx_http_request_t *r)
{
  ngx_pool_t *p = ngx_create_pool(1024, r->connection->log);
  if (p == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  /* a large allocation too: the pool's size (read from its lists) grows beyond its first block */
  if (ngx_palloc(p, 3000) == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  return ngx_http_leak_reply(r);   /* p is never destroyed */
}

static ngx_int_t __attribute__((noinline)) ngx_http_leak_churn_handler(ngx_http_request_t *r)
{
  ngx_pool_t *p = ngx_create_pool(1024, r->connection->log);
  if (p == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  if (ngx_palloc(p, 3000) == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  ngx_destroy_pool(p);
  return ngx_http_leak_reply(r);
}

static ngx_int_t __attribute__((noinline)) ngx_http_leak_conn_handler(ngx_http_request_t *r)
{
  /* larger than the connection pool's block: a large allocation, on the pool's large list */
  if (ngx_palloc(r->connection->pool, 2000) == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  return ngx_http_leak_reply(r);
}

static char *ngx_http_leak_keep(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
  ngx_http_core_loc_conf_t *clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
  clcf->handler = ngx_http_leak_keep_handler;
  return NGX_CONF_OK;
}

static char *ngx_http_leak_churn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
  ngx_http_core_loc_conf_t *clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
  clcf->handler = ngx_http_leak_churn_handler;
  return NGX_CONF_OK;
}

static char *ngx_http_leak_conn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
  ngx_http_core_loc_conf_t *clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
  clcf->handler = ngx_http_leak_conn_handler;
  return NGX_CONF_OK;
}
