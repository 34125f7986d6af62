// detectLuajit(pid): is this process's LuaJIT one leakscope can trace, and if not, why. Asked of
// the process's mapped modules with symbols/elf.ts; the tracer (native/luajit) is then told which
// module to probe (--lib) and looks nothing up itself.

import { codeMappings, readMaps } from '../proc/maps.js';
import { pathIn, pidAlive } from '../proc/processes.js';
import { definedFunctions } from '../symbols/elf.js';

export interface LuajitSupport {
  pid: number;
  supported: boolean;
  /** The module exporting the Lua C API ('' when none). */
  module: string;
  /** Why not, when not supported ('' when supported). */
  reason: string;
}

/** What says a module is the Lua C API, LuaJIT, and LuaJIT 2.1 (whose struct layouts the tracer knows). */
const LUA_API = 'lua_gettop';
const LUAJIT = 'luaJIT_setmode';
const V21 = ['luaJIT_version_2_1_0', 'luaJIT_profile_start'];

export function detectLuajit(pid: number): LuajitSupport {
  const no = (reason: string, module = ''): LuajitSupport => ({ pid, supported: false, module, reason });
  if (!Number.isInteger(pid) || pid <= 0) return no(`bad pid ${String(pid)}`);
  if (!pidAlive(pid)) return no(`process ${pid} does not exist`);
  const seen = new Set<string>();
  for (const m of codeMappings(readMaps(pid))) {
    if (seen.has(m.path)) continue;
    seen.add(m.path);
    const defined = definedFunctions(pathIn(pid, m.path.replace(/ \(deleted\)$/, '')), [LUA_API, LUAJIT, ...V21]);
    if (!defined.has(LUA_API)) continue;
    if (!defined.has(LUAJIT)) return no(`${m.path} is PUC Lua, not LuaJIT (no ${LUAJIT})`, m.path);
    if (!V21.some((s) => defined.has(s))) return no(`${m.path} is LuaJIT but not 2.1 (struct layouts known for 2.1 GC64 only)`, m.path);
    return { pid, supported: true, module: m.path, reason: '' };
  }
  if (seen.size === 0) return no(`cannot read the mappings of process ${pid} (run as root)`);
  return no(`no mapped module exports the Lua C API (${LUA_API}): not a Lua process, or Lua linked in without exported symbols`);
}
