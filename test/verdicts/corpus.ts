// The verdict corpus: every case (real captures, the shared fixtures, synthetic shapes), scored.

import type { Case, Scored } from './entities.js';
import { labelAll } from './entities.js';
import { realCases } from './real.js';
import { SYNTHETIC } from './synthetic.js';

/** Every case; `dir` holds fresh captures instead of the committed ones. */
export function corpus(dir?: string): Case[] {
  return [...realCases(dir), ...SYNTHETIC];
}

/** Loads and labels every case, in order. */
export async function scoreCases(cases: Case[]): Promise<Scored[]> {
  const rows: Scored[] = [];
  for (const c of cases) rows.push(...labelAll(c, await c.load()));
  return rows;
}
