# gdb script: prints the pools of an nginx worker that leakscope's nginx profile says it finds,
# read with nginx's own types (test/programs/gdb-nginx-types.c): the cycle's pool and the pool of
# every open connection. One line each: "POOL address 0 tag-in-hex bytes", bytes being the
# pool's blocks (d.end - block, along d.next) and its large allocations (what glibc's
# malloc_usable_size returns, computed here from the chunk's size word: gdb's inferior calls fail
# on kernels that refuse to write back the FPU state, and can kill the target there).
import gdb

ulong_p = gdb.lookup_type('unsigned long').pointer()

def usable_size(addr):
    # glibc 2.36: the size word sits 8 bytes before the user pointer; low bits are flags
    word = int(gdb.Value(addr - 8).cast(ulong_p).dereference())
    size = word & ~7
    return size - 16 if word & 2 else size - 8  # IS_MMAPPED: two header words, else one

def pool_bytes(p):
    total = 0
    block = p
    while int(block) != 0:
        total += int(block['d']['end']) - int(block)
        block = block['d']['next']
    large = p['large']
    while int(large) != 0:
        if int(large['alloc']) != 0:
            total += usable_size(int(large['alloc']))
        large = large['next']
    return total

def show(p, tag):
    print('POOL %x 0 %s %d' % (int(p), tag.encode().hex(), pool_bytes(p)))

cycle = gdb.parse_and_eval('*(ngx_cycle_t **)&ngx_cycle')
show(cycle['pool'], 'cycle')
for i in range(int(cycle['connection_n'])):
    c = cycle['connections'][i]
    # the channel to the master uses the cycle's pool: that pool is the cycle's, listed once
    if int(c['fd']) != -1 and int(c['pool']) != 0 and int(c['pool']) != int(cycle['pool']):
        show(c['pool'], 'connection')
