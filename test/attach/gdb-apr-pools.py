# gdb script: prints every pool of the APR pool tree of the attached process, one line each:
# "POOL address parent tag-in-hex bytes", walked from httpd's ap_pglobal up to the root and down through
# child/sibling with the types of test/programs/gdb-apr-pool.c (loaded with add-symbol-file).
# bytes: the pool's node ring (active, active->next ... back to active), each node's endp - node.
# Each pool's parent link must name the pool whose child/sibling list it was found in (no call into
# the process: gdb's inferior calls fail on kernels that refuse to write back the FPU state, and
# can kill the target there).
import gdb

pool_t = gdb.lookup_type('struct apr_pool_t').pointer()
root = gdb.parse_and_eval('*(struct apr_pool_t **)&ap_pglobal')
while int(root['parent']) != 0:
    root = root['parent']

def ring_bytes(p):
    first = p['active']
    node = first
    total = 0
    for _ in range(1 << 16):
        total += int(node['endp']) - int(node)
        node = node['next']
        if int(node) == int(first) or int(node) == 0:
            break
    return total

stack = [(root, 0)]
while stack:
    p, found_in = stack.pop()
    parent = int(p['parent'])
    if parent != found_in:
        print('MISMATCH %x parent %x but found in the child list of %x' % (int(p), parent, found_in))
    tag = p['tag'].string() if int(p['tag']) != 0 else ''
    print('POOL %x %x %s %d' % (int(p), parent, tag.encode().hex() or '-', ring_bytes(p)))
    c = p['child']
    while int(c) != 0:
        stack.append((c, int(p)))
        c = c['sibling']
