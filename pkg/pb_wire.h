/* pb_wire.h: one protobuf field off the wire, as protobuf-c 1.4's scan accepts or refuses it:
 * the shared step of the in-place walkers (artifact_wire.c, report_wire.c, mux_wire.c), which
 * are tested against protobuf-c's own decoding; and the varint writer of the in-place
 * encoders (vote_wire.c, mux_wire.c). */
#ifndef QM_PB_WIRE_H
#define QM_PB_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A run of bytes inside a received message. */
struct qm_span {
  const uint8_t *p;
  size_t n;
};

/* qm_span_cstr_len: the length of a string field as protobuf-c's C string shows it (up to
 * the first NUL). */
static inline size_t qm_span_cstr_len(struct qm_span s) {
  const uint8_t *nul = s.n ? memchr(s.p, 0, s.n) : NULL;
  return nul ? (size_t)(nul - s.p) : s.n;
}

/* Wire types. */
enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_32BIT = 5 };

/* One field as protobuf-c's scan sees it. */
struct qm_pb_field {
  uint32_t tag;
  unsigned wt;
  const uint8_t *member; /* what protobuf-c's bool parser reads: the varint's bytes, the */
  size_t member_len;     /* fixed bytes, or the length prefix and the payload */
  struct qm_span payload; /* length-delimited: the bytes after the prefix; else empty */
  uint64_t value;         /* varint: its value modulo 2^64 */
};

/* qm_pb_next_field: the field at |*at|: 1 (and |*at| moves past it), 0 at |end|, -1 malformed. */
static inline __attribute__((always_inline)) int qm_pb_next_field(const uint8_t **at, const uint8_t *end,
                                                                 struct qm_pb_field *f) {
  const uint8_t *p = *at;
  size_t rem = (size_t)(end - p), used = 0;
  if (rem == 0) return 0;
  /* The tag: at most 5 bytes; a first byte that says field 0 is refused outright (a longer
   * encoding of 0 is not, and lands among the unknown fields, as in protobuf-c). */
  if ((p[0] & 0xf8) == 0) return -1;
  uint32_t tag = (uint32_t)(p[0] & 0x7f) >> 3;
  f->wt = p[0] & 7;
  if (!(p[0] & 0x80)) {
    used = 1;
  } else {
    size_t max = rem < 5 ? rem : 5;
    unsigned shift = 4;
    for (size_t i = 1; i < max && !used; i++) {
      if (p[i] & 0x80) {
        tag |= (uint32_t)(p[i] & 0x7f) << shift;
        shift += 7;
      } else {
        tag |= (uint32_t)p[i] << shift;
        used = i + 1;
      }
    }
    if (!used) return -1;
  }
  p += used;
  rem -= used;
  f->tag = tag;
  f->member = p;
  f->value = 0;
  f->payload = (struct qm_span){p, 0};
  switch (f->wt) {
    case WT_VARINT: {
      size_t max = rem < 10 ? rem : 10, i = 0;
      while (i < max && (p[i] & 0x80)) i++;
      if (i == max) return -1;
      uint64_t v = 0;
      for (size_t k = 0; k <= i; k++) v |= (uint64_t)(p[k] & 0x7f) << (7 * k);
      f->value = v;
      f->member_len = i + 1;
      break;
    }
    case WT_64BIT:
      if (rem < 8) return -1;
      f->member_len = 8;
      break;
    case WT_32BIT:
      if (rem < 4) return -1;
      f->member_len = 4;
      break;
    case WT_LEN: {
      size_t max = rem < 5 ? rem : 5, i = 0;
      uint64_t len = 0;
      for (; i < max; i++) {
        len |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) break;
      }
      if (i == max) return -1;
      size_t hdr = i + 1;
      if (len > rem - hdr) return -1;
      f->payload.p = p + hdr;
      f->payload.n = (size_t)len;
      f->member_len = hdr + (size_t)len;
      break;
    }
    default:
      return -1; /* groups (3, 4) and the unassigned 6 and 7 */
  }
  *at = p + f->member_len;
  return 1;
}

/* Writing: the bytes of a varint, and the varint itself at |p| (returns the end). */
static inline size_t qm_pb_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline uint8_t *qm_pb_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

#endif
