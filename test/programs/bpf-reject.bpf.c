// SPDX-License-Identifier: GPL-2.0
/* Programs the kernel's verifier rejects, one reason each, for test/doctor/verifier-margin.test.ts:
 * the failure message of a loader must give the verifier's reason (native/common/ls_verify.h). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* Over the 1M processed-instructions limit: a bounded loop of long iterations (few jumps on a
 * path, so it is the instruction limit that is hit, not the one on jump sequences). */
#define ADD4 "%[x] += 1; %[x] += 1; %[x] += 1; %[x] += 1;"
#define ADD32 ADD4 ADD4 ADD4 ADD4 ADD4 ADD4 ADD4 ADD4
#define ADD256 ADD32 ADD32 ADD32 ADD32 ADD32 ADD32 ADD32 ADD32
SEC("tp/syscalls/sys_enter_nanosleep")
int too_large(void *ctx) {
  __u64 x = bpf_get_prandom_u32();
  for (int i = 0; i < 8000; i++) {
    asm volatile(ADD256 : [x] "+r"(x));
    if (x == 12345) break;
  }
  return x == 7;
}

/* A helper this program type may not call. */
SEC("tp/syscalls/sys_enter_nanosleep")
int bad_helper(void *ctx) {
  struct bpf_sock_tuple t = {};
  struct bpf_sock *sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), -1, 0);
  return sk != 0;
}

/* A field this kernel's BTF does not have (a CO-RE relocation that cannot be resolved). */
struct task_struct___ls_missing { int ls_no_such_field; } __attribute__((preserve_access_index));
SEC("tp/syscalls/sys_enter_nanosleep")
int bad_btf(void *ctx) {
  struct task_struct___ls_missing *t = (void *)bpf_get_current_task();
  return BPF_CORE_READ(t, ls_no_such_field);
}
