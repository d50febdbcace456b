/* vote_wire.c: protobuf encoding of Outcome and SignedOutcome, proto3 rules as protobuf-c
 * applies them: fields in number order, zero values (0, false, empty) left out, repeated
 * elements always written. Every field number here is < 16: its tag is one byte. */
#include "vote_wire.h"

#include <string.h>

#include "pb_wire.h"

/* A length-delimited field (always written: repeated elements and the callers' non-empty
 * checks decide). */
static size_t lenfield_len(size_t len) { return 1 + qm_pb_varint_len(len) + len; }

static uint8_t *put_lenfield(uint8_t *p, unsigned field, const void *data, size_t len) {
  *p++ = (uint8_t)(field << 3 | WT_LEN);
  p = qm_pb_put_varint(p, len);
  if (len) memcpy(p, data, len);
  return p + len;
}

/* Optional scalars and strings: nothing when zero/empty (proto3 implicit presence). */
static size_t opt_bytes_len(size_t len) { return len ? lenfield_len(len) : 0; }
static size_t opt_varint_len(uint64_t v) { return v ? 1 + qm_pb_varint_len(v) : 0; }

static uint8_t *put_opt_bytes(uint8_t *p, unsigned field, const void *data, size_t len) {
  return len ? put_lenfield(p, field, data, len) : p;
}

static uint8_t *put_opt_varint(uint8_t *p, unsigned field, uint64_t v) {
  if (!v) return p;
  *p++ = (uint8_t)(field << 3 | WT_VARINT);
  return qm_pb_put_varint(p, v);
}

size_t qm_outcome_wire_len(const struct qm_outcome_fields *o) {
  /* an int64 goes out as its two's complement uint64 (10 bytes when negative) */
  return opt_bytes_len(o->repr_len) + opt_bytes_len(o->provider_id_len) + opt_bytes_len(o->domain_len) +
         opt_varint_len(o->initiated ? 1 : 0) + opt_varint_len(o->sequence) +
         opt_varint_len((uint64_t)o->decided_unix_nanos);
}

uint8_t *qm_outcome_wire_put(const struct qm_outcome_fields *o, uint8_t *p) {
  p = put_opt_bytes(p, 1, o->request_repr, o->repr_len);
  p = put_opt_bytes(p, 2, o->provider_id, o->provider_id_len);
  p = put_opt_bytes(p, 3, o->domain, o->domain_len);
  p = put_opt_varint(p, 4, o->initiated ? 1 : 0);
  p = put_opt_varint(p, 5, o->sequence);
  return put_opt_varint(p, 6, (uint64_t)o->decided_unix_nanos);
}

static size_t signed_vote_len(const struct qm_signed_vote_fields *v) {
  return opt_bytes_len(v->outcome_len) + opt_bytes_len(v->signature_len) + opt_bytes_len(v->key_id_len) +
         v->nproof * lenfield_len(32) + opt_varint_len(v->leaf_index) + opt_varint_len(v->leaf_count);
}

size_t qm_batch_vote_wire_len(const struct qm_signed_vote_fields *v) { return lenfield_len(signed_vote_len(v)); }

uint8_t *qm_batch_vote_wire_put(const struct qm_signed_vote_fields *v, uint8_t *p) {
  *p++ = (uint8_t)(1 << 3 | WT_LEN);
  p = qm_pb_put_varint(p, signed_vote_len(v));
  p = put_opt_bytes(p, 1, v->outcome, v->outcome_len);
  p = put_opt_bytes(p, 2, v->signature, v->signature_len);
  p = put_opt_bytes(p, 3, v->key_id, v->key_id_len);
  for (size_t k = 0; k < v->nproof; k++) p = put_lenfield(p, 4, v->proof[k], 32);
  p = put_opt_varint(p, 5, v->leaf_index);
  return put_opt_varint(p, 6, v->leaf_count);
}

static size_t item_status_len(uint32_t code, size_t message_len) {
  return opt_varint_len(code) + opt_bytes_len(message_len);
}

size_t qm_item_status_wire_len(uint32_t code, size_t message_len) {
  return lenfield_len(item_status_len(code, message_len));
}

uint8_t *qm_item_status_wire_put(uint32_t code, const char *message, size_t message_len, uint8_t *p) {
  *p++ = (uint8_t)(1 << 3 | WT_LEN);
  p = qm_pb_put_varint(p, item_status_len(code, message_len));
  p = put_opt_varint(p, 1, code);
  return put_opt_bytes(p, 2, message, message_len);
}
