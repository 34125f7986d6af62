// leakscope's native files, the part of native/ that builds each, and what a user calls it: the
// one table naming every native artifact (the build, first use, setup and doctor read it).
// `part` is as in scripts/debian-packages.txt (which packages each part needs); a part with a
// slash (unwind/kstack) is an optional extra of the part before it.

export type NativeName = 'recorder' | 'bpf' | 'luajit' | 'unwind' | 'kstack';

export interface NativeFile {
  /** Path under a native directory (the package's native/, or the per-user cache). */
  file: string;
  part: string;
  /** What a message calls it ("the BPF loader"). */
  what: string;
  /** What it is for, as doctor lists it. */
  role: string;
  /** leakscope's main commands need it (doctor fails without it). */
  required: boolean;
  /** What is missing without it, for an optional extra. */
  without?: string;
}

export const NATIVE: Record<NativeName, NativeFile> = {
  recorder: { file: 'recorder/build/libleakscope.so', part: 'recorder', what: 'the recorder library', role: 'in-process recorder for `run` (LD_PRELOAD)', required: false },
  bpf: { file: 'bpf/build/leakscope-bpf', part: 'bpf', what: 'the BPF loader', role: 'BPF loader for `attach` (uprobes on the allocator functions)', required: true },
  luajit: { file: 'luajit/build/lstrace-luajit', part: 'luajit', what: 'the LuaJIT tracer', role: 'LuaJIT allocator tracer', required: false },
  unwind: { file: 'unwind/build/libleakscope-unwind.so', part: 'unwind', what: 'the stack unwinder', role: 'CFI stack unwinder (full stacks on binaries without frame pointers)', required: true },
  kstack: {
    file: 'unwind/build/ls-kstack', part: 'unwind/kstack', what: "the kernel side's stack tracer",
    role: 'kernel side: mmap events with whole user stacks', required: false, without: 'kernel side: mmap events come without stacks',
  },
};

export const NATIVE_NAMES = Object.keys(NATIVE) as NativeName[];
