// Transparent decompression of inputs, detected by magic bytes (never by file name):
// gzip through node:zlib; zstd through the `zstd` program when the machine has it (native speed,
// and on another core), else fzstd's streaming decompressor (Node 20 has no zstd).
// LEAKSCOPE_ZSTD=js forces fzstd.
// A damaged or cut compressed stream is not fatal: what was decompressed is kept and a
// damage warning says where it stopped.

import { spawn } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { Decompress } from 'fzstd';

export type Compression = 'none' | 'gzip' | 'zstd';

export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * The decompressed bytes of `raw`. Problems of the compressed stream are damage of the input:
 * they are reported through `onDamage` (prefixed with `name`) and end the stream early instead
 * of throwing.
 */
export function decompress(
  name: string,
  raw: AsyncIterable<Buffer>,
  kind: Compression,
  onDamage: (msg: string) => void,
): AsyncIterable<Buffer> {
  if (kind === 'gzip') return gunzip(name, raw, onDamage);
  if (kind === 'zstd') return process.env.LEAKSCOPE_ZSTD === 'js' ? unzstd(name, raw, onDamage) : unzstdNative(name, raw, onDamage);
  return raw;
}

/** zstd -dc in a child process; falls back to fzstd when the program is missing. */
async function* unzstdNative(name: string, raw: AsyncIterable<Buffer>, warn: (msg: string) => void): AsyncIterable<Buffer> {
  const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned) {
    yield* unzstd(name, raw, warn);
    return;
  }
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let feedError: unknown;
  // Feed the compressed bytes; a reader that stops early closes stdin (EPIPE is expected then).
  const feeding = (async () => {
    try {
      for await (const piece of raw) {
        if (!child.stdin.write(piece)) await new Promise((r) => child.stdin.once('drain', r));
      }
    } catch (err) {
      feedError = err;
    } finally {
      child.stdin.end();
    }
  })();
  child.stdin.on('error', () => {});
  let out = 0;
  try {
    for await (const piece of child.stdout as AsyncIterable<Buffer>) {
      out += piece.length;
      yield piece;
    }
    await feeding;
    if (feedError) throw feedError;
    const code = await exited;
    if (code !== 0) {
      const why = /premature end|truncated|incomplete|unexpected end/i.test(stderr) ? 'cut short (file truncated?)' : `damaged (${stderr.trim().split('\n').pop() ?? 'zstd failed'})`;
      warn(`${name}: zstd data ${why} after ${out} decompressed bytes; kept what came before`);
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

async function* gunzip(name: string, raw: AsyncIterable<Buffer>, warn: (msg: string) => void): AsyncIterable<Buffer> {
  const z = createGunzip({ chunkSize: 256 * 1024 });
  const src = Readable.from(raw, { objectMode: false });
  src.on('error', (err) => z.destroy(err));
  src.pipe(z);
  let out = 0;
  try {
    for await (const piece of z as AsyncIterable<Buffer>) {
      out += piece.length;
      yield piece;
    }
  } catch (err) {
    if (isFsError(err)) throw err;
    warn(`${name}: gzip data ${describeZlib(err)} after ${out} decompressed bytes; kept what came before`);
  } finally {
    src.destroy();
  }
}

async function* unzstd(name: string, raw: AsyncIterable<Buffer>, warn: (msg: string) => void): AsyncIterable<Buffer> {
  const queue: Buffer[] = [];
  const d = new Decompress((data) => {
    // fzstd may reuse its window buffer: copy what it hands out.
    if (data.length) queue.push(Buffer.from(data));
  });
  let out = 0;
  try {
    for await (const piece of raw) {
      d.push(piece);
      while (queue.length) {
        const b = queue.shift()!;
        out += b.length;
        yield b;
      }
    }
    d.push(new Uint8Array(0), true);
  } catch (err) {
    if (isFsError(err)) throw err;
    warn(`${name}: zstd data ${describeZstd(err)} after ${out} decompressed bytes; kept what came before`);
  }
  // Whatever was decoded before the end (or the failure) is still worth having.
  while (queue.length) yield queue.shift()!;
}

function isFsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

function describeZlib(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'Z_BUF_ERROR') return 'cut short (file truncated?)';
  return `damaged (${e?.message ?? String(err)})`;
}

function describeZstd(err: unknown): string {
  const e = err as { code?: number; message?: string };
  if (e?.code === 5) return 'cut short (file truncated?)';
  return `damaged (${e?.message ?? String(err)})`;
}
