/* A process holding N live APR pools (argv[1], default 10000) in a tree like a busy server's:
 * a root under APR's global pool, 100 "connection" pools under it, the rest "request" pools
 * spread under those, each with a small allocation. Prints the address of one request pool and
 * "ready", then waits to be killed. For the discovery walk's bench (bench/pool-discovery.bench.ts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <apr_general.h>
#include <apr_pools.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    apr_pool_t *root, *conns[100], *leaf = NULL;
    int i;
    apr_initialize();
    apr_pool_create(&root, NULL);
    apr_pool_tag(root, "server");
    for (i = 0; i < 100 && i < n - 1; i++) {
        apr_pool_create(&conns[i], root);
        apr_pool_tag(conns[i], "connection");
        memset(apr_palloc(conns[i], 512), 1, 512);
    }
    for (i = 101; i < n; i++) {
        apr_pool_create(&leaf, conns[i % 100]);
        apr_pool_tag(leaf, "request");
        memset(apr_palloc(leaf, 100 + i % 3000), 1, 100 + i % 3000);
    }
    printf("%p ready\n", (void *)leaf);
    fflush(stdout);
    pause();
    return 0;
}
