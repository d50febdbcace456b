/* report_wire.c: a strict protobuf wire walker for the three messages the auditor reads,
 * with protobuf-c 1.4's acceptance rules (see report_wire.h). */
#include "report_wire.h"

#include <errno.h>
#include <string.h>

static int bool_of(const struct qm_pb_field *f) {
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
  struct qm_pb_field f;
  int rc;
  while ((rc = qm_pb_next_field(&at, end, &f)) > 0) {
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
  struct qm_pb_field f;
  int rc;
  while ((rc = qm_pb_next_field(&at, end, &f)) > 0) {
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
  struct qm_pb_field f;
  struct qm_signed_view spare;
  int rc;
  *count = 0;
  while ((rc = qm_pb_next_field(&at, end, &f)) > 0) {
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

int qm_span_streq(struct qm_span a, const char *s) {
  size_t n = qm_span_cstr_len(a);
  return strlen(s) == n && memcmp(a.p, s, n) == 0;
}
