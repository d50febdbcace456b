/* report_wire.c: a strict protobuf wire walker for the three messages the auditor reads,
 * with protobuf-c 1.4's acceptance rules (see report_wire.h). */
#include "report_wire.h"

#include <errno.h>
#include <string.h>

enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_32BIT = 5 };

/* One field as protobuf-c's scan sees it. */
struct field {
  uint32_t tag;
  unsigned wt;
  const uint8_t *member; /* what protobuf-c's bool parser reads: the varint's bytes, the */
  size_t member_len;     /* fixed bytes, or the length prefix and the payload */
  struct qm_span payload; /* length-delimited: the bytes after the prefix */
  uint64_t value;         /* varint: its value modulo 2^64 */
};

/* next_field: the field at |*at|: 1 (and |*at| moves past it), 0 at |end|, -1 malformed. */
static inline __attribute__((always_inline)) int next_field(const uint8_t **at, const uint8_t *end,
                                                           struct field *f) {
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

static int bool_of(const struct field *f) {
  /* protobuf-c reads a bool from whatever the wire type brought, nonzero 7-bit groups. */
  for (size_t i = 0; i < f->member_len; i++)
    if (f->member[i] & 0x7f) return 1;
  return 0;
}

/* An absent field reads as empty, never as a null pointer (memcmp and friends may get it). */
static const uint8_t none[1];

int qm_wire_signed(const uint8_t *p, size_t n, struct qm_signed_view *out) {
  if (!p) p = none;
  /* Field by field, not memset: proof[] beyond nproof is never read, and clearing it cost a
   * third of the walk. */
  out->raw = (struct qm_span){p, n};
  out->outcome = out->signature = out->key_id = (struct qm_span){none, 0};
  out->nproof = 0;
  out->leaf_index = out->leaf_count = 0;
  const uint8_t *at = p, *end = p + n;
  struct field f;
  int rc;
  while ((rc = next_field(&at, end, &f)) > 0) {
    switch (f.tag) {
      case 1: /* outcome */
      case 2: /* signature */
      case 3: /* key_id */
      case 4: /* proof, repeated */
        if (f.wt != WT_LEN) return -EBADMSG;
        if (f.tag == 1) out->outcome = f.payload;
        else if (f.tag == 2) out->signature = f.payload;
        else if (f.tag == 3) out->key_id = f.payload;
        else if (out->nproof++ < QM_MERKLE_DEPTH_MAX) out->proof[out->nproof - 1] = f.payload;
        break;
      case 5: /* leaf_index */
      case 6: /* leaf_count */
        if (f.wt != WT_VARINT) return -EBADMSG;
        if (f.tag == 5) out->leaf_index = (uint32_t)f.value;
        else out->leaf_count = (uint32_t)f.value;
        break;
      default: /* unknown: skipped */
        break;
    }
  }
  return rc < 0 ? -EBADMSG : 0;
}

int qm_wire_outcome(const uint8_t *p, size_t n, struct qm_outcome_view *out) {
  if (!p) p = none;
  memset(out, 0, sizeof *out);
  out->request_repr.p = out->provider_id.p = out->domain.p = none;
  const uint8_t *at = p, *end = p + n;
  struct field f;
  int rc;
  while ((rc = next_field(&at, end, &f)) > 0) {
    switch (f.tag) {
      case 1: /* request_repr */
      case 2: /* provider_id */
      case 3: /* domain */
        if (f.wt != WT_LEN) return -EBADMSG;
        if (f.tag == 1) out->request_repr = f.payload;
        else if (f.tag == 2) out->provider_id = f.payload;
        else out->domain = f.payload;
        break;
      case 4: /* initiated: any wire type */
        out->initiated = bool_of(&f);
        break;
      case 5: /* sequence */
      case 6: /* decided_unix_nanos */
        if (f.wt != WT_VARINT) return -EBADMSG;
        if (f.tag == 5) out->sequence = f.value;
        else out->decided_unix_nanos = (int64_t)f.value;
        break;
      default:
        break;
    }
  }
  return rc < 0 ? -EBADMSG : 0;
}

int qm_wire_batch(const uint8_t *p, size_t n, struct qm_signed_view *out, size_t cap, size_t *count) {
  if (!p) p = none;
  const uint8_t *at = p, *end = p + n;
  struct field f;
  struct qm_signed_view spare;
  int rc;
  *count = 0;
  while ((rc = next_field(&at, end, &f)) > 0) {
    if (f.tag != 1) continue; /* unknown: skipped */
    if (f.wt != WT_LEN) return -EBADMSG;
    struct qm_signed_view *v = *count < cap ? &out[*count] : &spare;
    if (qm_wire_signed(f.payload.p, f.payload.n, v)) return -EBADMSG;
    (*count)++;
  }
  return rc < 0 ? -EBADMSG : 0;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) n++;
  return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = (uint8_t)(v | 0x80);
  *p++ = (uint8_t)v;
  return p;
}

/* reply_body_len: proto3 leaves zero numbers and empty strings out; an enum is an int32,
 * sign-extended to 64 bits on the wire. */
static size_t reply_body_len(int result, size_t elen, uint32_t code) {
  return (result ? 1 + varint_len((uint64_t)(int64_t)result) : 0) + (elen ? 1 + varint_len(elen) + elen : 0) +
         (code ? 1 + varint_len(code) : 0);
}

size_t qm_wire_batch_reply_len(int result, const char *error, uint32_t code) {
  size_t body = reply_body_len(result, error ? strlen(error) : 0, code);
  return 1 + varint_len(body) + body;
}

uint8_t *qm_wire_batch_reply_put(uint8_t *out, int result, const char *error, uint32_t code) {
  size_t elen = error ? strlen(error) : 0;
  *out++ = 0x0a; /* ReportBatchReply.replies, length-delimited */
  out = varint_put(out, reply_body_len(result, elen, code));
  if (result) {
    *out++ = 0x08; /* result, varint */
    out = varint_put(out, (uint64_t)(int64_t)result);
  }
  if (elen) {
    *out++ = 0x12; /* error, length-delimited */
    out = varint_put(out, elen);
    memcpy(out, error, elen);
    out += elen;
  }
  if (code) {
    *out++ = 0x18; /* code, varint */
    out = varint_put(out, code);
  }
  return out;
}

size_t qm_span_cstr_len(struct qm_span s) {
  const uint8_t *nul = s.n ? memchr(s.p, 0, s.n) : NULL;
  return nul ? (size_t)(nul - s.p) : s.n;
}

int qm_span_streq(struct qm_span a, const char *s) {
  size_t n = qm_span_cstr_len(a);
  return strlen(s) == n && memcmp(a.p, s, n) == 0;
}
