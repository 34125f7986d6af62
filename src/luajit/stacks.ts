// Turns one allocation record's Lua frames into model frames (leaf first), with the VM's own
// allocations under separate sites so they are never blamed on user code.

import { frame, type Frame } from '../model/events.js';
import { LJ_F_NOLUA, LJ_F_NOSTATE, LJ_F_TRACE, LJ_F_VM, LjKind, type LjRecord } from './records.js';
import { protoLine, type ProtoCache } from './protos.js';

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

export function recordFrames(r: LjRecord, protos: ProtoCache): Frame[] {
  if (r.flags & LJ_F_NOSTATE) return [frame({ fn: VM_SITES.unknownState })];
  if (r.flags & LJ_F_VM) return [frame({ fn: r.vmstate === -3 ? VM_SITES.gc : VM_SITES.jit })];
  if (r.flags & LJ_F_NOLUA) return [frame({ fn: VM_SITES.outside })];
  const out: Frame[] = [];
  let firstLua = true;
  for (const f of r.frames) {
    if (f.kind === LjKind.Lua) {
      const p = protos.get(r.pid, f.ptr);
      if (!p) {
        out.push(frame({ fn: '[lua function ?]' }));
        continue;
      }
      const line = protoLine(p, f.pos);
      let fn = p.firstline > 0 ? `function <${p.chunk}:${p.firstline}>` : 'main chunk';
      if (firstLua && r.flags & LJ_F_TRACE) fn += ` ${COMPILED}`;
      out.push(frame({ fn, file: p.chunk, line }));
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
