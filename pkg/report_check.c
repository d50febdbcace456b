/* report_check.c: decode, verify, decode again, attribute: the auditor's gate. */
#include "report_check.h"

#include <stdio.h>
#include <string.h>

#include "qmesh/v1/qmesh.pb-c.h"

static int find_provider(const struct qm_topology *t, const char *id) {
  for (size_t i = 0; i < t->nproviders; i++)
    if (strcmp(t->providers[i].ep.id, id) == 0) return (int)i;
  return -1;
}

enum qm_report_verdict qm_report_check(const uint8_t *msg, size_t len, const struct qm_topology *t,
                                       struct qm_key *const *keys, struct qm_vote *out, char *why,
                                       size_t cap) {
  enum qm_report_verdict v = QM_REPORT_OK;
  Qmesh__V1__Outcome *o = NULL;
  Qmesh__V1__SignedOutcome *so = qmesh__v1__signed_outcome__unpack(NULL, len, msg);
  if (!so) {
    snprintf(why, cap, "malformed SignedOutcome (%zu bytes)", len);
    return QM_REPORT_MALFORMED;
  }
  int p = find_provider(t, so->key_id);
  if (p < 0) {
    snprintf(why, cap, "unknown signer '%.64s'", so->key_id);
    v = QM_REPORT_UNKNOWN_SIGNER;
    goto out;
  }
  if (!qm_verify(keys[p], so->outcome.data, so->outcome.len, so->signature.data, so->signature.len)) {
    snprintf(why, cap, "signature of %s does not verify over the outcome bytes", so->key_id);
    v = QM_REPORT_BAD_SIGNATURE;
    goto out;
  }
  o = qmesh__v1__outcome__unpack(NULL, so->outcome.len, so->outcome.data);
  if (!o || o->request_repr.len != 32 || strlen(o->domain) >= sizeof out->domain) {
    snprintf(why, cap, "signed bytes are not an Outcome with a 32-byte request_repr and a domain under %zu bytes",
             sizeof out->domain);
    v = QM_REPORT_MALFORMED;
    goto out;
  }
  if (strcmp(o->provider_id, so->key_id) != 0) {
    snprintf(why, cap, "outcome of '%.64s' signed by '%.64s'", o->provider_id, so->key_id);
    v = QM_REPORT_SIGNER_MISMATCH;
    goto out;
  }
  memcpy(out->repr, o->request_repr.data, 32);
  out->sequence = o->sequence;
  memcpy(out->domain, o->domain, strlen(o->domain) + 1);
  out->provider = (size_t)p;
  out->initiated = o->initiated;
  out->decided_ns = o->decided_unix_nanos;
out:
  if (o) qmesh__v1__outcome__free_unpacked(o, NULL);
  qmesh__v1__signed_outcome__free_unpacked(so, NULL);
  return v;
}
