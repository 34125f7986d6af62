/* The unwinder API agreed with native/unwind (native/unwind/unwind.h). The loader dlopen()s it
 * when given --unwind LIB, so the BPF part builds and runs before (or without) it. */
#ifndef LS_UNWIND_SHIM_H
#define LS_UNWIND_SHIM_H
#include <stddef.h>
#include <stdint.h>
typedef int (*ls_unwind_fn)(int pid, const uint64_t regs[3], const uint8_t *stack, size_t stack_len,
                            uint64_t stack_base_sp, uint64_t *pcs_out, int max);
typedef void (*ls_unwind_forget_fn)(int pid);
#endif
