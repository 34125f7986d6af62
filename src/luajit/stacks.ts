// Turns one allocation record's Lua frames into model frames (leaf first), with the VM's own
// allocations under separate sites so they are never blamed on user code.

import { frame, type Frame } from '../model/events.js';
import { LJ_F_NOLUA, LJ_F_NOSTATE, LJ_F_TRACE, LJ_F_VM, LjKind, type LjRecord } from './records.js';
import { protoLine, type ProtoCache } from './protos.js';
import type { TraceResolver } from './traces.js';

/** Site names for allocations not made by Lua code (see docs/luajit.md). */
export const VM_SITES = {
  gc: '(luajit vm: gc)',
  jit: '(luajit vm: jit compiler)',
  outside: '(luajit vm: C code via the lua_* API, no Lua running)',
  unknownState: '(luajit: allocator of an undiscovered lua_State)',
  noFrames: '(luajit vm: no Lua frame)',
} as const;

/** Label of compiled code: the frame's line is where the running trace was entered. */
export const COMPILED = '[compiled]';

/** Values read from a live process are untrusted: a line or address out of range becomes 0. */
function clean(f: Frame): Frame {
  if (!Number.isSafeInteger(f.line) || f.line < 0 || f.line > 0x7fffffff) f.line = 0;
  if (!Number.isSafeInteger(f.pc) || f.pc < 0 || f.pc >= 2 ** 48) f.pc = 0;
  return f;
}

export function recordFrames(r: LjRecord, protos: ProtoCache, traces?: TraceResolver): Frame[] {
  return framesOf(r, protos, traces).map(clean);
}

function framesOf(r: LjRecord, protos: ProtoCache, traces?: TraceResolver): Frame[] {
  if (r.flags & LJ_F_NOSTATE) return [frame({ fn: VM_SITES.unknownState })];
  if (r.flags & LJ_F_VM) return [frame({ fn: r.vmstate === -3 ? VM_SITES.gc : VM_SITES.jit })];
  if (r.flags & LJ_F_NOLUA) return [frame({ fn: VM_SITES.outside })];
  const out: Frame[] = [];
  let firstLua = true;
  // Compiled code: the interpreter's saved PC of the top frame is stale; the trace's snapshot
  // gives the bytecode actually running (possibly in a function inlined into the trace).
  const inTrace = (r.flags & LJ_F_TRACE) !== 0;
  const tpc = inTrace && traces && r.trace && r.mcofs >= 0 ? traces.resolve(r.pid, r.trace, r.mcofs) : null;
  const luaFrame = (ptr: number, pos: number, compiled: boolean): Frame => {
    const p = protos.get(r.pid, ptr);
    if (!p) return frame({ fn: '[lua function ?]' });
    let fn = p.firstline > 0 ? `function <${p.chunk}:${p.firstline}>` : 'main chunk';
    if (compiled) fn += ` ${COMPILED}`;
    return frame({ fn, file: p.chunk, line: protoLine(p, pos) });
  };
  for (const f of r.frames) {
    if (f.kind === LjKind.Lua) {
      if (firstLua && inTrace) {
        if (tpc && tpc.proto === f.ptr) out.push(luaFrame(f.ptr, tpc.pos, true));
        else {
          if (tpc) out.push(luaFrame(tpc.proto, tpc.pos, true)); // inlined callee
          out.push(luaFrame(f.ptr, 0xffffffff, true));
        }
      } else out.push(luaFrame(f.ptr, f.pos, false));
      firstLua = false;
    } else if (out.length > 0) {
      // C functions and builtins between Lua frames (pcall, a C module calling back into Lua).
      out.push(frame({ fn: f.kind === LjKind.C ? '[C]' : '[builtin]', pc: f.kind === LjKind.C ? f.ptr : 0 }));
    }
    // A C function or builtin at the leaf (string.rep, ngx.say, ...) is dropped: the site is
    // the Lua line that called it.
  }
  return out.length ? out : [frame({ fn: VM_SITES.noFrames })];
}
