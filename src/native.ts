// Where leakscope's own files are: the package root (src/native.ts and dist/native.js both sit one
// level below it), every native artifact that native/<part>/Makefile builds, and the data shipped
// beside the code (profiles/). The one module that computes these paths; doctor lists the
// artifacts from the same table.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A path inside the package. */
export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}

export interface NativeArtifact {
  /** native/<part>/ builds it; `sub` names an optional extra of the part (scripts/debian-packages.txt). */
  readonly part: string;
  readonly sub?: string;
  readonly file: string;
  /** native/<part>/build/<file> */
  readonly path: string;
  readonly what: string;
  /** What is missing without it, for an optional extra. */
  readonly without?: string;
  /** leakscope's main commands need it (doctor fails without it). */
  readonly required: boolean;
}

function artifact(part: string, file: string, what: string, required: boolean, extra?: { sub: string; without: string }): NativeArtifact {
  return { part, file, path: packagePath('native', part, 'build', file), what, required, ...extra };
}

export const NATIVE = {
  bpfLoader: artifact('bpf', 'leakscope-bpf', 'BPF loader for `attach` (uprobes on the allocator functions)', true),
  unwinder: artifact('unwind', 'libleakscope-unwind.so', 'CFI stack unwinder (full stacks on binaries without frame pointers)', true),
  kstack: artifact('unwind', 'ls-kstack', 'kernel side: mmap events with whole user stacks', false,
    { sub: 'unwind/kstack', without: 'kernel side: mmap events come without stacks' }),
  recorder: artifact('recorder', 'libleakscope.so', 'in-process recorder for `run` (LD_PRELOAD)', false),
  luajitTracer: artifact('luajit', 'lstrace-luajit', 'LuaJIT allocator tracer', false),
} as const satisfies Record<string, NativeArtifact>;

export function isBuilt(a: NativeArtifact): boolean {
  return existsSync(a.path);
}
