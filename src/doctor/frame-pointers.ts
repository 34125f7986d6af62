// Does a binary keep frame pointers? Looks at the first instructions of a sample of its
// functions for the frame setup `push %rbp; mov %rsp,%rbp` (after an optional endbr64).
// Leaf functions often skip it even with -fno-omit-frame-pointer, and code without frame
// pointers still sets one up where it needs it (alloca), hence a ratio and thresholds.
import type { ElfFile, FunctionSymbol } from '../symbols/elf.js';

const ENDBR64 = Buffer.from([0xf3, 0x0f, 0x1e, 0xfa]);
const PUSH_RBP = 0x55;
const MOV_RSP_RBP = Buffer.from([0x48, 0x89, 0xe5]);

// Start-up code every executable links in, built without frame pointers either way.
const CRT = new Set(['_start', '_init', '_fini', 'deregister_tm_clones', 'register_tm_clones', '__do_global_dtors_aux', 'frame_dummy', '__libc_csu_init', '__libc_csu_fini']);

export interface FramePointerVerdict {
  sampled: number;
  withFrame: number;
  verdict: 'yes' | 'no' | 'mixed' | 'unknown';
}

/** `push %rbp` first, then `mov %rsp,%rbp` soon after (compilers schedule other
 *  instructions in between). */
export function hasFramePointerPrologue(code: Buffer): boolean {
  const start = code.subarray(0, 4).equals(ENDBR64) ? 4 : 0;
  if (code[start] !== PUSH_RBP) return false;
  const mov = code.indexOf(MOV_RSP_RBP, start + 1);
  return mov > 0 && mov <= start + 12;
}

/** Samples up to `max` functions (spread over the address range, tiny stubs left out). */
export function framePointers(elf: ElfFile, fns: FunctionSymbol[], max = 300): FramePointerVerdict {
  const candidates = [...new Map(fns.filter((f) => f.size >= 16 && !CRT.has(f.name)).map((f) => [f.addr, f])).values()].sort((a, b) => a.addr - b.addr);
  const step = Math.max(1, candidates.length / max);
  let sampled = 0;
  let withFrame = 0;
  for (let i = 0; i < candidates.length && sampled < max; i += step) {
    const code = elf.bytesAt(candidates[Math.floor(i)]!.addr, 20);
    if (code.length < 8) continue;
    sampled++;
    if (hasFramePointerPrologue(code)) withFrame++;
  }
  if (sampled < 5) return { sampled, withFrame, verdict: 'unknown' };
  const r = withFrame / sampled;
  return { sampled, withFrame, verdict: r >= 0.5 ? 'yes' : r <= 0.15 ? 'no' : 'mixed' };
}
