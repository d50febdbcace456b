/* artifact_wire.c: a protobuf wire walker for ArtifactBatch and Artifact with protobuf-c
 * 1.4's acceptance rules (see artifact_wire.h). */
#include "artifact_wire.h"

#include <errno.h>
#include <string.h>

enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_32BIT = 5 };

struct field {
  uint32_t tag;
  unsigned wt;
  const uint8_t *data; /* length-delimited: the payload; varint: its bytes */
  size_t len;
  uint64_t value; /* varint: its value modulo 2^64 */
};

/* next_field: the field at |*at| as protobuf-c's scan sees it: 1 (|*at| moves past it), 0 at
 * |end|, -1 malformed. */
static int next_field(const uint8_t **at, const uint8_t *end, struct field *f) {
  const uint8_t *p = *at;
  size_t rem = (size_t)(end - p), used = 0;
  if (rem == 0) return 0;
  /* The tag, at most 5 bytes; a first byte naming field 0 is refused (a longer encoding of
   * 0 is an unknown field, as in protobuf-c). */
  if ((p[0] & 0xf8) == 0) return -1;
  uint32_t tag = (uint32_t)(p[0] & 0x7f) >> 3;
  f->wt = p[0] & 7;
  if (!(p[0] & 0x80)) {
    used = 1;
  } else {
    size_t max = rem < 5 ? rem : 5;
    unsigned shift = 4;
    for (size_t i = 1; i < max && !used; i++) {
      tag |= (uint32_t)(p[i] & 0x7f) << shift;
      shift += 7;
      if (!(p[i] & 0x80)) used = i + 1;
    }
    if (!used) return -1;
  }
  p += used;
  rem -= used;
  f->tag = tag;
  size_t skip;
  switch (f->wt) {
    case WT_VARINT: {
      size_t max = rem < 10 ? rem : 10, i = 0;
      while (i < max && (p[i] & 0x80)) i++;
      if (i == max) return -1;
      uint64_t v = 0;
      for (size_t k = 0; k <= i; k++) v |= (uint64_t)(p[k] & 0x7f) << (7 * k);
      f->value = v;
      f->data = p;
      f->len = skip = i + 1;
      break;
    }
    case WT_64BIT:
    case WT_32BIT:
      skip = f->wt == WT_64BIT ? 8 : 4;
      if (rem < skip) return -1;
      break;
    case WT_LEN: {
      /* The prefix: at most 5 bytes, its full value (up to 35 bits) checked against what
       * is left, as protobuf-c does. */
      size_t max = rem < 5 ? rem : 5, i = 0;
      uint64_t len = 0;
      for (; i < max; i++) {
        len |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) break;
      }
      if (i == max || len > rem - (i + 1)) return -1;
      f->data = p + i + 1;
      f->len = (size_t)len;
      skip = i + 1 + (size_t)len;
      break;
    }
    default: return -1; /* groups (3, 4) and the unassigned 6 and 7 */
  }
  *at = p + skip;
  return 1;
}

/* cstr_len: a string field's length as protobuf-c's C string shows it (up to a NUL). */
static size_t cstr_len(const uint8_t *p, size_t n) {
  const uint8_t *nul = n ? memchr(p, 0, n) : NULL;
  return nul ? (size_t)(nul - p) : n;
}

/* An empty message may come as a null pointer; walk a real (empty) buffer instead. */
static const uint8_t none[1];

int qm_artifact_read(const uint8_t *p, size_t n, struct qm_artifact_view *out) {
  if (!p) p = none;
  memset(out, 0, sizeof *out);
  out->context = out->domain = ""; /* absent strings read as empty, never NULL */
  const uint8_t *at = p, *end = p + n;
  struct field f;
  int rc;
  while ((rc = next_field(&at, end, &f)) > 0) {
    switch (f.tag) {
      case 1: /* request_repr */
      case 2: /* verification_context */
      case 3: /* domain */
      case 5: /* front_id */
        if (f.wt != WT_LEN) return -EBADMSG;
        if (f.tag == 1) {
          out->request_repr = f.data;
          out->repr_len = f.len;
        } else if (f.tag == 2) {
          out->context = (const char *)f.data;
          out->context_len = cstr_len(f.data, f.len);
        } else if (f.tag == 3) {
          out->domain = (const char *)f.data;
          out->domain_len = cstr_len(f.data, f.len);
        }
        break;
      case 4: /* sequence */
      case 6: /* accepted_unix_nanos */
        if (f.wt != WT_VARINT) return -EBADMSG;
        if (f.tag == 4) out->sequence = f.value;
        break;
      default: break; /* unknown: skipped */
    }
  }
  return rc < 0 ? -EBADMSG : 0;
}

int qm_artifact_batch_count(const uint8_t *p, size_t n, size_t *count) {
  if (!p) p = none;
  const uint8_t *at = p, *end = p + n;
  struct field f;
  size_t c = 0;
  int rc;
  while ((rc = next_field(&at, end, &f)) > 0) {
    if (f.tag != 1) continue;
    if (f.wt != WT_LEN) return -EBADMSG;
    c++;
  }
  if (rc < 0) return -EBADMSG;
  *count = c;
  return 0;
}

int qm_artifact_batch_next(const uint8_t **at, const uint8_t *end, const uint8_t **item, size_t *len) {
  struct field f;
  while (next_field(at, end, &f) > 0) {
    if (f.tag != 1) continue;
    *item = f.data;
    *len = f.len;
    return 1;
  }
  return 0;
}
