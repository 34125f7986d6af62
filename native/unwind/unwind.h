/* leakscope user-stack unwinder: turns the registers and the stack slice a BPF probe copied
 * into a call stack, with the CFI (.eh_frame / .debug_frame) of the modules mapped in the
 * process. Memory is read only from the copied slice: the thread has moved on since.
 *
 * Link with -lleakscope-unwind -ldw -lelf (or use libleakscope-unwind.so).
 * Thread-safe (one internal lock); caches per pid (module list, CFI), so call
 * ls_unwind_forget(pid) when a process exits or execs. */
#ifndef LEAKSCOPE_UNWIND_H
#define LEAKSCOPE_UNWIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Unwinds one sampled user stack of process `pid` (x86-64).
 * regs: ip, sp, bp at the sample; stack/stack_len: bytes copied from the user stack starting
 * at address stack_base_sp (normally == sp). Writes up to `max` pcs, leaf first: pcs_out[0] is
 * ip; the others are return addresses (symbolize them at pc - 1). Returns the count (>= 1
 * when max >= 1: a stack that cannot be unwound is just its ip), or -1 on bad arguments.
 * The stack ends early where the copied slice ends, where a frame has no CFI (JIT code,
 * hand-written assembly without unwind info) or where the CFI says the outermost frame. */
int ls_unwind(int pid, const uint64_t regs[3], const uint8_t *stack, size_t stack_len,
              uint64_t stack_base_sp, uint64_t *pcs_out, int max);

/* Drops what is cached for `pid` (its modules and CFI). Call on exit and exec. */
void ls_unwind_forget(int pid);

/* Re-reads the modules of `pid` from /proc/PID/maps on the next unwind (after a dlopen).
 * ls_unwind also does this by itself once when ip lies in no known module. */
void ls_unwind_refresh(int pid);

#ifdef __cplusplus
}
#endif
#endif
