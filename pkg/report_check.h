/* report_check.h: the auditor's gate for one Report: decode the SignedOutcome, find the
 * signer's public key, verify the signature over the exact outcome bytes, decode those bytes
 * and check the signer reports its own outcome. Pure: no I/O, no state. */
#ifndef QM_REPORT_CHECK_H
#define QM_REPORT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "sign.h"
#include "topology.h"

enum qm_report_verdict {
  QM_REPORT_OK = 0,
  QM_REPORT_MALFORMED,       /* not a SignedOutcome, or the signed bytes are not an Outcome */
  QM_REPORT_UNKNOWN_SIGNER,  /* key_id names no provider of the topology */
  QM_REPORT_BAD_SIGNATURE,   /* the signature does not verify with that provider's key */
  QM_REPORT_SIGNER_MISMATCH, /* a provider reporting another provider's outcome */
};

struct qm_vote {
  uint8_t repr[32];
  uint64_t sequence;
  char domain[QM_ID_MAX];
  size_t provider; /* index in the topology */
  int initiated;
  int64_t decided_ns;
};

/* qm_report_check: returns a verdict; on QM_REPORT_OK |out| holds the vote. |why| (|cap|
 * bytes) gets a human reason naming the offending value for any other verdict. |keys| holds
 * one public key per topology provider (borrowed). */
enum qm_report_verdict qm_report_check(const uint8_t *msg, size_t len, const struct qm_topology *t,
                                       struct qm_key *const *keys, struct qm_vote *out, char *why,
                                       size_t cap);

#endif
