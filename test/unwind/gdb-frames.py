# Prints the stopped thread's real frames as gdb unwinds them: one "GDBFRAME PC NAME" line
# each, leaving out the frames gdb synthesizes from debug info (inlined calls, tail calls),
# which have no return address of their own on the stack.
import gdb

f = gdb.newest_frame()
while f is not None:
    if f.type() not in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME):
        print("GDBFRAME 0x%x %s" % (f.pc(), f.name() or "??"))
    f = f.older()
