/* vote_wire.h: the provider's per-vote messages written straight into a buffer: the Outcome
 * it signs, each SignedOutcome of a SignedOutcomeBatch and each ItemStatus of its reply. The bytes are exactly what
 * protobuf-c packs for the same values (tests/test_vote_wire.c checks that), without
 * building message structs and sizing nested messages twice per vote. */
#ifndef QM_VOTE_WIRE_H
#define QM_VOTE_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct qm_outcome_fields {
  const uint8_t *request_repr;
  size_t repr_len;
  const char *provider_id; /* strings: |*_len| bytes, no NUL needed */
  size_t provider_id_len;
  const char *domain;
  size_t domain_len;
  int initiated;
  uint64_t sequence;
  int64_t decided_unix_nanos;
};

/* qm_outcome_wire_len / qm_outcome_wire_put: the serialized Outcome; put writes exactly
 * len bytes and returns the end. */
size_t qm_outcome_wire_len(const struct qm_outcome_fields *o);
uint8_t *qm_outcome_wire_put(const struct qm_outcome_fields *o, uint8_t *out);

struct qm_signed_vote_fields {
  const uint8_t *outcome;
  size_t outcome_len;
  const uint8_t *signature;
  size_t signature_len;
  const char *key_id;
  size_t key_id_len;
  const uint8_t (*proof)[32];
  size_t nproof;
  uint32_t leaf_index, leaf_count;
};

/* qm_batch_vote_wire_len / _put: one SignedOutcome as an element of SignedOutcomeBatch.votes
 * (field 1: tag, length and message). A batch is these elements back to back. */
size_t qm_batch_vote_wire_len(const struct qm_signed_vote_fields *v);
uint8_t *qm_batch_vote_wire_put(const struct qm_signed_vote_fields *v, uint8_t *out);

/* qm_item_status_wire_len / _put: one ItemStatus {code, message} as an element of
 * BatchReply.items (field 1), the provider's per-artifact answer to a hub. */
size_t qm_item_status_wire_len(uint32_t code, size_t message_len);
uint8_t *qm_item_status_wire_put(uint32_t code, const char *message, size_t message_len, uint8_t *out);

#endif
