/* artifact_wire.h: a provider's reading of ArtifactBatch and Artifact straight off the
 * received bytes: no allocation, no copy. It accepts and refuses what protobuf-c 1.4's
 * unpack does and reads the same values (unknown fields skipped, the last of a repeated
 * singular field wins, a known field with the wrong wire type refused, strings seen as C
 * strings up to a NUL), so a decision is the same as before; tests/test_artifact_wire.c
 * checks that against protobuf-c on valid and mutated messages. */
#ifndef QM_ARTIFACT_WIRE_H
#define QM_ARTIFACT_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* What a decision reads of an Artifact: views into the message's bytes. */
struct qm_artifact_view {
  const uint8_t *request_repr;
  size_t repr_len;
  const char *context; /* verification_context, |context_len| bytes, not NUL-terminated */
  size_t context_len;
  const char *domain;
  size_t domain_len;
  uint64_t sequence;
};

/* qm_artifact_read: 0, or -EBADMSG where protobuf-c's unpack fails. */
int qm_artifact_read(const uint8_t *p, size_t n, struct qm_artifact_view *out);

/* qm_artifact_batch_count: checks a whole ArtifactBatch and counts its artifacts (0, or
 * -EBADMSG). qm_artifact_batch_next then walks a checked batch: 1 with the next artifact's
 * bytes in |*item|/|*len|, 0 at the end. |*at| starts at the batch's first byte. */
int qm_artifact_batch_count(const uint8_t *p, size_t n, size_t *count);
int qm_artifact_batch_next(const uint8_t **at, const uint8_t *end, const uint8_t **item, size_t *len);

#endif
