// Which frames of a stack matter. Allocator internals (a data file of rules) are dropped from the
// leaf so a site is the first caller that matters; a stack that passed through a pool API names
// it as `via`. An LSan-style file (`leak:PATTERN` lines) ignores whole sites.

import { readFileSync } from 'node:fs';
import type { Frame } from '../model/events.js';
import { frameLabel } from '../model/events.js';
import { UserError } from '../errors.js';
import { packagePath } from '../native/locate.js';

export interface FrameRules {
  alloc: RegExp[];
  pool: RegExp[];
  file: RegExp[];
}

export interface SiteShape {
  /** Frames leaf first, internals dropped (never empty when the stack had frames). */
  stack: Frame[];
  label: string;
  via?: string;
}

const DEFAULT_RULES_URL = packagePath('profiles', 'suppressions', 'default.txt');
let defaults: FrameRules | undefined;

/** The built-in rules (profiles/suppressions/default.txt). */
export function defaultFrameRules(): FrameRules {
  return (defaults ??= parseFrameRules(readFileSync(DEFAULT_RULES_URL, 'utf8'), 'default.txt'));
}

export function parseFrameRules(text: string, name: string): FrameRules {
  const rules: FrameRules = { alloc: [], pool: [], file: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(alloc|pool|file):(.+)$/.exec(line);
    if (!m) throw new UserError(`${name}:${i + 1}: expected "alloc:", "pool:" or "file:" followed by a pattern`);
    rules[m[1] as keyof FrameRules].push(globToRegExp(m[2]!.trim(), true));
  });
  return rules;
}

function globToRegExp(glob: string, whole: boolean): RegExp {
  const body = glob.replace(/[.+?()[\]{}|\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(whole ? `^${body}$` : body);
}

function matchesAny(res: RegExp[], s: string): string | undefined {
  if (!s) return undefined;
  for (const re of res) if (re.test(s)) return s;
  return undefined;
}

/** Drops allocator internals from the leaf side of a stack. */
export function shapeSite(frames: Frame[], rules: FrameRules): SiteShape {
  let via: string | undefined;
  let i = 0;
  for (; i < frames.length; i++) {
    const f = frames[i]!;
    const fn = f.fn;
    const pool = matchesAny(rules.pool, fn);
    if (pool) {
      via = pool;
      continue;
    }
    if (matchesAny(rules.alloc, fn)) continue;
    if (!fn && f.file && rules.file.some((re) => re.test(f.file))) continue;
    break;
  }
  // Never drop every frame: a stack of internals only is still better than nothing.
  const stack = i < frames.length ? frames.slice(i) : frames.slice(-1);
  const label = stack.length ? frameLabel(stack[0]!) : '(no stack)';
  return via ? { stack, label, via } : { stack, label };
}

/** LSan-style suppressions: sites with a frame matching any pattern are ignored. */
export class Suppressions {
  constructor(readonly patterns: RegExp[] = []) {}

  static parse(text: string, name: string): Suppressions {
    const out: RegExp[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const m = /^leak:(.+)$/.exec(line);
      if (!m) throw new UserError(`${name}:${i + 1}: expected "leak:PATTERN" (LSan suppression syntax), got "${line.slice(0, 60)}"`);
      out.push(lsanPattern(m[1]!.trim()));
    });
    return new Suppressions(out);
  }

  static load(path: string): Suppressions {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`${path}: ${code === 'ENOENT' ? 'no such suppression file' : `cannot read suppression file (${code})`}`);
    }
    return Suppressions.parse(text, path);
  }

  /** True when a frame's function, file or module matches a pattern. */
  suppressed(frames: Frame[]): boolean {
    if (this.patterns.length === 0) return false;
    for (const f of frames) {
      for (const re of this.patterns) {
        if ((f.fn && re.test(f.fn)) || (f.file && re.test(f.file)) || (f.module && re.test(f.module))) return true;
      }
    }
    return false;
  }
}

/** LSan: `*` is any run of characters, `^` and `$` anchor; otherwise a substring match. */
function lsanPattern(p: string): RegExp {
  const start = p.startsWith('^');
  const end = p.endsWith('$') && p.length > (start ? 1 : 0);
  const core = p.slice(start ? 1 : 0, end ? -1 : undefined);
  const body = core.replace(/[.+?()[\]{}|\\^$]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`${start ? '^' : ''}${body}${end ? '$' : ''}`);
}
