// Every input format leakscope reads. readInputs() asks each one's detect(); `--from NAME` picks one.
// One import and one entry per source, one line each, so that additions merge trivially.

import type { Source } from './source.js';
import { traceFileSource } from './trace-file.js';
import { aprLogSource } from './apr-log.js';
import { nginxLogSource } from './nginx-log.js';
import { valgrindSource } from './valgrind.js';
import { heaptrackSource } from './heaptrack.js';

export const sources: Source[] = [
  traceFileSource,
  aprLogSource,
  nginxLogSource,
  valgrindSource,
  heaptrackSource,
];

export function sourceByName(name: string): Source | undefined {
  return sources.find((s) => s.name === name);
}
