// The pass over a `.lstrace` file that symbolization needs: only the definition records (FRAME,
// STACK, MODULE, FORK, EXEC) become events; every other record is stepped over without building
// one (a decoder generated from the same record table, trace/codec.ts), which makes it several
// times faster than a full read on big recorder traces. Framing, CRCs and damage are the
// reader's own (trace/parser.ts).

import type { EventSink } from '../model/events.js';
import { decoderOf } from '../trace/codec.js';
import { readTrace } from '../trace/reader.js';

const DEFINITIONS = decoderOf(['frame', 'stack', 'module', 'fork', 'exec']);

/** Streams a trace's definition records (frame, stack, module, fork, exec) to `sink`; returns
 *  the number of intact chunks seen. Damage is told through `onWarning`, as the reader says it. */
export async function scanDefinitions(path: string, sink: EventSink, onWarning?: (msg: string, damaged: boolean) => void): Promise<{ chunks: number }> {
  const r = await readTrace(path, sink, {
    decode: DEFINITIONS,
    onWarning: onWarning && ((msg, damaged) => onWarning(`${msg} (while symbolizing)`, damaged)),
  });
  return { chunks: r.chunks };
}
