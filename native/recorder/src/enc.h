// Record encoding into a held chunk buffer (docs/trace-format.md): LEB128 varints, zigzag
// svarints, length-prefixed strings. Callers reserve room first (lk_begin / lk_reserve).
#ifndef LK_ENC_H
#define LK_ENC_H

#include <string.h>
#include "lk.h"

static inline uint8_t *lk_cur(lk_buf *b) { return b->data + LK_CHUNK_HDR + b->pos; }

static inline void lk_u8(lk_buf *b, uint8_t v) { b->data[LK_CHUNK_HDR + b->pos++] = v; }

static inline void lk_var(lk_buf *b, uint64_t v) {
  uint8_t *p = lk_cur(b), *s = p;
  while (v >= 0x80) { *p++ = (uint8_t)(v | 0x80); v >>= 7; }
  *p++ = (uint8_t)v;
  b->pos += (size_t)(p - s);
}

static inline void lk_svar(lk_buf *b, int64_t v) {
  lk_var(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

// Strings are cut to `max` bytes (callers reserve max + 10).
static inline void lk_str(lk_buf *b, const char *s, size_t max) {
  size_t n = s ? strnlen(s, max) : 0;
  lk_var(b, n);
  if (n) memcpy(lk_cur(b), s, n);
  b->pos += n;
}

// The same through a local write pointer, for the hot records: stores through a byte pointer
// may alias the buffer's fields, so the lk_* helpers reload and store `pos` around each field.
static inline uint8_t *lk_put_var(uint8_t *p, uint64_t v) {
  while (v >= 0x80) { *p++ = (uint8_t)(v | 0x80); v >>= 7; }
  *p++ = (uint8_t)v;
  return p;
}

// An event record's type byte and dt; the caller sets b->last_t = t and b->pos when done.
static inline uint8_t *lk_put_ev(uint8_t *p, uint8_t type, int64_t dt) {
  *p++ = type;
  return lk_put_var(p, ((uint64_t)dt << 1) ^ (uint64_t)(dt >> 63));
}

static inline void lk_set_end(lk_buf *b, const uint8_t *p) { b->pos = (size_t)(p - (b->data + LK_CHUNK_HDR)); }

// Starts an event record: type byte and dt against the chunk's running time.
static inline void lk_ev(lk_buf *b, uint8_t type, uint64_t t) {
  lk_u8(b, type);
  lk_svar(b, (int64_t)(t - b->last_t));
  b->last_t = t;
}

#endif
