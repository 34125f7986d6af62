// detectLuajit(pid): is this process's LuaJIT one leakscope can trace, and if not, why.
// For `leakscope doctor` and `attach --allocator luajit`.

import { execFile } from 'node:child_process';
import { luajitTracer, tracerBuilt } from './native.js';
import { notBuiltHint } from '../doctor/not-built.js';

export interface LuajitSupport {
  pid: number;
  supported: boolean;
  /** The module exporting the Lua C API ('' when none). */
  module: string;
  /** Why not, when not supported ('' when supported). */
  reason: string;
}

export function detectLuajit(pid: number): Promise<LuajitSupport> {
  if (!Number.isInteger(pid) || pid <= 0) {
    return Promise.resolve({ pid, supported: false, module: '', reason: `bad pid ${String(pid)}` });
  }
  if (!tracerBuilt()) {
    return Promise.resolve({ pid, supported: false, module: '', reason: `${luajitTracer()} is not built: ${notBuiltHint('luajit')}` });
  }
  return new Promise((resolve) => {
    execFile(luajitTracer(), ['--detect', '--pid', String(pid)], { timeout: 10_000 }, (err, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (err || !line) {
        resolve({ pid, supported: false, module: '', reason: `tracer failed: ${(stderr || String(err)).trim().split('\n').pop()}` });
        return;
      }
      try {
        const j = JSON.parse(line) as { supported: boolean; module: string; reason: string };
        const reason = j.supported ? '' : j.reason;
        resolve({ pid, supported: j.supported, module: j.module, reason });
      } catch {
        resolve({ pid, supported: false, module: '', reason: 'tracer printed no verdict' });
      }
    });
  });
}
