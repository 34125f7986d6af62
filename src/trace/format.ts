// Constants of the `.lstrace` format (docs/trace-format.md), shared by the writer and the reader.

export const FORMAT_VERSION = 1;

/** `LSTRACE1` */
export const FILE_MAGIC = Buffer.from('LSTRACE1', 'latin1');
/** `LSCK` read as a little-endian u32. */
export const CHUNK_MAGIC_U32 = 0x4b43534c;
export const CHUNK_MAGIC = Buffer.from('LSCK', 'latin1');
export const CHUNK_HEADER_BYTES = 12;
/** Largest payload a reader accepts (and a writer may produce). */
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/** Largest metadata JSON a reader accepts. */
export const MAX_META = 1024 * 1024;

export const enum Rec {
  CTX = 0x01,
  PROCESS = 0x02,
  FORK = 0x03,
  EXEC = 0x04,
  EXIT = 0x05,
  ALLOC = 0x10,
  FREE = 0x11,
  REALLOC = 0x12,
  POOL_CREATE = 0x20,
  POOL_DESTROY = 0x21,
  POOL_CLEAR = 0x22,
  POOL_ALLOC = 0x23,
  POOL_FREE = 0x24,
  POOL_TAG = 0x25,
  POOL_CLEANUP = 0x26,
  POOL_SIZE = 0x27,
  POOL_FOUND = 0x28,
  MMAP = 0x30,
  MUNMAP = 0x31,
  BRK = 0x32,
  SHM = 0x33,
  RSS = 0x34,
  KERNEL = 0x35,
  MARKER = 0x40,
  LOST = 0x41,
  MODULE = 0x50,
  FRAME = 0x60,
  STACK = 0x61,
}

export const SHM_OPS = ['get', 'attach', 'detach', 'remove'] as const;
