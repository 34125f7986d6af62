// leakscope's native files, the part of native/ that builds each, and what a user calls it.
// `part` is as in scripts/debian-packages.txt (which packages each part needs).

export type NativeName = 'recorder' | 'bpf' | 'luajit' | 'unwind' | 'kstack';

export interface NativeFile {
  /** Path under a native directory (the package's native/, or the per-user cache). */
  file: string;
  part: string;
  what: string;
}

export const NATIVE: Record<NativeName, NativeFile> = {
  recorder: { file: 'recorder/build/libleakscope.so', part: 'recorder', what: 'the recorder library' },
  bpf: { file: 'bpf/build/leakscope-bpf', part: 'bpf', what: 'the BPF loader' },
  luajit: { file: 'luajit/build/lstrace-luajit', part: 'luajit', what: 'the LuaJIT tracer' },
  unwind: { file: 'unwind/build/libleakscope-unwind.so', part: 'unwind', what: 'the stack unwinder' },
  kstack: { file: 'unwind/build/ls-kstack', part: 'unwind/kstack', what: "the kernel side's stack tracer" },
};

export const NATIVE_NAMES = Object.keys(NATIVE) as NativeName[];
