/* report_wire.h: the auditor's reading of SignedOutcomeBatch, SignedOutcome and Outcome
 * straight off the received bytes: no allocation, no copy, every field a view into the
 * buffer. It accepts and refuses exactly what protobuf-c's unpack does (unknown fields are
 * skipped, the last of a repeated singular field wins, a known field with the wrong wire
 * type is refused, strings read as C strings up to a NUL, bool reads protobuf-c's way), so
 * a vote means the same as before; tests/test_report_wire.c checks this against protobuf-c
 * on valid and mutated messages. */
#ifndef QM_REPORT_WIRE_H
#define QM_REPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "pb_wire.h"


struct qm_signed_view {
  struct qm_span raw; /* the whole encoded SignedOutcome, as received */
  struct qm_span outcome, signature, key_id;
  struct qm_span proof[QM_MERKLE_DEPTH_MAX]; /* the first ones, in order */
  size_t nproof;                             /* all of them: may exceed the array */
  uint32_t leaf_index, leaf_count;
};

struct qm_outcome_view {
  struct qm_span request_repr, provider_id, domain;
  int initiated;
  uint64_t sequence;
  int64_t decided_unix_nanos;
};

/* qm_wire_signed / qm_wire_outcome: 0, or -EBADMSG where protobuf-c's unpack fails. */
int qm_wire_signed(const uint8_t *p, size_t n, struct qm_signed_view *out);
int qm_wire_outcome(const uint8_t *p, size_t n, struct qm_outcome_view *out);
/* qm_wire_batch: a SignedOutcomeBatch's votes, in order: the first |cap| into |out|, their
 * number in |*count| (all of them, so a caller with too small an array learns the size).
 * 0, or -EBADMSG when the batch or any vote in it is malformed. */
int qm_wire_batch(const uint8_t *p, size_t n, struct qm_signed_view *out, size_t cap, size_t *count);

/* qm_wire_batch_reply_len / _put: one ReportReply as an element of ReportBatchReply.replies
 * (field 1), byte for byte what protobuf-c packs for the same values: |result| a
 * ReportReply.Result, |error| a C string (NULL or "" for none), |code| a gRPC status. put
 * writes exactly len bytes and returns the end. */
size_t qm_wire_batch_reply_len(int result, const char *error, uint32_t code);
uint8_t *qm_wire_batch_reply_put(uint8_t *out, int result, const char *error, uint32_t code);

/* qm_span_streq: the string field equals the C string |s|, as strcmp on the decoded field. */
int qm_span_streq(struct qm_span a, const char *s);

#endif
