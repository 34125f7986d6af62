/* Records shared by the LuaJIT BPF programs (lj_alloc.bpf.c) and the loader (loader.c).
 * The loader writes each record to stdout as: u32 length, then the record bytes
 * (struct lj_event header followed by nframes struct lj_frame). src/luajit/events.ts decodes it. */
#ifndef LJ_EVENT_H
#define LJ_EVENT_H

#define LJ_MAX_FRAMES 24

enum lj_op { LJ_OP_ALLOC = 1, LJ_OP_REALLOC = 2, LJ_OP_FREE = 3, LJ_OP_DISCOVER = 10 };

/* lj_event.flags */
#define LJ_F_TRACE 1      /* allocation from JIT-compiled code (vmstate = trace number) */
#define LJ_F_NOLUA 2      /* no Lua code running on cur_L (C code calling the lua_* API) */
#define LJ_F_VM 4         /* the VM's own work: GC step, trace recorder/optimizer/assembler */
#define LJ_F_NOSTATE 8    /* allocator data not matched to a discovered global_State */
#define LJ_F_TRUNC 16     /* more frames than LJ_MAX_FRAMES */
#define LJ_F_BADREAD 32   /* a frame could not be read (stack changing under us) */
#define LJ_F_DRAIN 64     /* made while settling: a block user space must not count */

/* lj_rec_event.op: LJ_OP_* | LJ_OP_DRAIN for blocks made while settling */
#define LJ_OP_DRAIN 0x80

/* lj_frame.kind */
enum lj_kind { LJ_K_LUA = 0, LJ_K_C = 1, LJ_K_FF = 2 };

struct lj_frame {
  unsigned long long ptr; /* Lua: GCproto address; C: lua_CFunction address; FF: 0 */
  unsigned int pos;       /* Lua: bytecode position (~0 unknown) */
  unsigned char kind;
  unsigned char ffid;
  unsigned short pad;
};

struct lj_event {
  unsigned long long ts; /* CLOCK_MONOTONIC ns */
  unsigned int pid, tid;
  unsigned long long ptr;   /* old block (realloc/free); DISCOVER: lua_State */
  unsigned long long ret;   /* new block; DISCOVER: allocf */
  unsigned long long osize; /* DISCOVER: allocd */
  unsigned long long nsize;
  unsigned long long g;     /* global_State */
  int vmstate;
  unsigned char op, nframes, flags, pad;
  unsigned long long trace; /* GCtrace running (vmstate > 0), when jtrace is known */
  unsigned int mcofs;       /* return address into that trace's machine code - mcode (~0 unknown) */
  unsigned int pad2;
  struct lj_frame frames[LJ_MAX_FRAMES];
};

#define LJ_EVENT_HDR 80

/* A free, BPF ring to loader only: what a free needs, in one cache line of the ring. */
struct lj_free_event {
  unsigned long long ts;
  unsigned int pid, tid;
  unsigned long long ptr;
  unsigned char op; /* LJ_OP_FREE */
  unsigned char pad[7];
};
#define LJ_FREE_EVENT_SIZE 32
#define LJ_STACK_WORDS 128
#define LJ_T_SZMCODE 84
#define LJ_T_MCODE 88

/* Records on the loader's stdout (after a u32 length each). */
enum lj_rec_kind { LJ_REC_STACK = 1, LJ_REC_EVENT = 2 };

struct lj_rec_event {
  unsigned char kind, op, pad[2];
  unsigned int pid, tid, stack; /* stack: id of an LJ_REC_STACK record, 0 for none */
  unsigned long long ts, ptr, ret, nsize;
} __attribute__((packed));

/* Struct offsets of LuaJIT 2.1 (x86_64, GC64, FR2), as in lj_obj.h / lj_frame.h of the
 * 2.1 branch with StrInternState (2020+). Verified against Debian libluajit2-5.1-2
 * 2.1-20230119 (the real library, and the end-to-end test); see docs/luajit.md. */
#define LJ_L_GCT 9        /* lua_State.gct == ~LJ_TTHREAD (6) */
#define LJ_L_GLREF 16
#define LJ_L_BASE 32
#define LJ_L_STACK 56
#define LJ_L_CFRAME 80
#define LJ_G_ALLOCF 0
#define LJ_G_ALLOCD 8
#define LJ_G_VMSTATE 184
#define LJ_G_MAINTHREF 192
#define LJ_G_CUR_L 368
#define LJ_G_JIT_BASE 376
#define LJ_FN_FFID 10
#define LJ_FN_PC 32
#define LJ_FN_CF 40
#define LJ_PROTO_SIZE 104
#define LJ_CFRAME_PC 24
#define LJ_GCVMASK ((1ULL << 47) - 1)

#endif
