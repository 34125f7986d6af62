/* APR 1.7's apr_pool_t as apr_pools.c declares it (a build without pool debugging, as Debian's
 * libapr-1.so.0 is): compiled with -g so that gdb reads a live pool tree with the offsets the
 * compiler gives these declarations, independently of profiles/allocators/apr.json. */
#include <apr_pools.h>
#include <apr_allocator.h>
#include <apr_hash.h>

typedef struct cleanup_t cleanup_t;
struct process_chain;

struct apr_pool_t {
    apr_pool_t           *parent;
    apr_pool_t           *child;
    apr_pool_t           *sibling;
    apr_pool_t          **ref;
    cleanup_t            *cleanups;
    cleanup_t            *free_cleanups;
    apr_allocator_t      *allocator;
    struct process_chain *subprocesses;
    apr_abortfunc_t       abort_fn;
    apr_hash_t           *user_data;
    const char           *tag;
    apr_memnode_t        *active;
    apr_memnode_t        *self; /* The node containing the pool itself */
    char                 *self_first_avail;
    cleanup_t            *pre_cleanups;
};

struct apr_pool_t gdb_apr_pool;
apr_memnode_t gdb_apr_memnode;
