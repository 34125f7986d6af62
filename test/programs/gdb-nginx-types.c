/* nginx's types for gdb: compiled with -g against nginx-dev's headers, configured with the
 * flags Debian builds nginx with (test/attach/gdb-pools.ts), so gdb reads ngx_cycle_t,
 * ngx_connection_t and ngx_pool_t with the build's own layout. */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

ngx_cycle_t gdb_ngx_cycle;
ngx_connection_t gdb_ngx_connection;
ngx_pool_t gdb_ngx_pool;
ngx_pool_large_t gdb_ngx_pool_large;
