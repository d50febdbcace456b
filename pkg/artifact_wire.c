/* artifact_wire.c: a protobuf wire walker for ArtifactBatch and Artifact with protobuf-c
 * 1.4's acceptance rules (see artifact_wire.h). */
#include "artifact_wire.h"

#include <errno.h>
#include <string.h>

#include "pb_wire.h"

/* An empty message may come as a null pointer; walk a real (empty) buffer instead. */
static const uint8_t none[1];

int qm_artifact_read(const uint8_t *p, size_t n, struct qm_artifact_view *out) {
  if (!p) p = none;
  memset(out, 0, sizeof *out);
  out->context = out->domain = ""; /* absent strings read as empty, never NULL */
  const uint8_t *at = p, *end = p + n;
  struct qm_pb_field f;
  int rc;
  while ((rc = qm_pb_next_field(&at, end, &f)) > 0) {
    switch (f.tag) {
      case 1: /* request_repr */
      case 2: /* verification_context */
      case 3: /* domain */
      case 5: /* front_id */
        if (f.wt != WT_LEN) return -EBADMSG;
        if (f.tag == 1) {
          out->request_repr = f.payload.p;
          out->repr_len = f.payload.n;
        } else if (f.tag == 2) {
          out->context = (const char *)f.payload.p;
          out->context_len = qm_span_cstr_len(f.payload);
        } else if (f.tag == 3) {
          out->domain = (const char *)f.payload.p;
          out->domain_len = qm_span_cstr_len(f.payload);
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
  struct qm_pb_field f;
  size_t c = 0;
  int rc;
  while ((rc = qm_pb_next_field(&at, end, &f)) > 0) {
    if (f.tag != 1) continue;
    if (f.wt != WT_LEN) return -EBADMSG;
    c++;
  }
  if (rc < 0) return -EBADMSG;
  *count = c;
  return 0;
}

int qm_artifact_batch_next(const uint8_t **at, const uint8_t *end, const uint8_t **item, size_t *len) {
  struct qm_pb_field f;
  while (qm_pb_next_field(at, end, &f) > 0) {
    if (f.tag != 1) continue;
    *item = f.payload.p;
    *len = f.payload.n;
    return 1;
  }
  return 0;
}
