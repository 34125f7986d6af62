// The Source for leakscope's own trace files (`.lstrace`, possibly compressed).

import type { TraceMeta } from '../model/events.js';
import type { Source, SourceStats } from './source.js';
import { emptyStats } from './source.js';
import { readTraceStream } from '../trace/reader.js';
import { FILE_MAGIC } from '../trace/format.js';
import { parseHeader } from '../trace/header.js';

export const traceFileSource: Source = {
  name: 'lstrace',
  description: 'leakscope trace (.lstrace) written by the recorder, attach or import',

  detect(head: Buffer): number {
    if (head.length < 4) return 0;
    const n = Math.min(head.length, FILE_MAGIC.length);
    return head.compare(FILE_MAGIC, 0, n, 0, n) === 0 ? 1 : 0;
  },

  meta(input): TraceMeta {
    // The header is normally well inside the peeked head; a larger one is read with the events.
    const h = input.head ? parseHeader(input.path, input.head, false) : undefined;
    if (h) return h.meta;
    return { format: 1, clock: 'ns', source: 'lstrace' };
  },

  async read(input, sink) {
    const r = await readTraceStream(input.path, input.stream, sink);
    const stats: SourceStats & { chunks: number } = { ...emptyStats(), chunks: r.chunks };
    stats.events = r.events;
    stats.badRecords = r.corruptChunks;
    stats.warnings.push(...r.warnings);
    stats.damaged = r.damaged;
    return stats;
  },
};
