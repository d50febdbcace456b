/* report_check.h: the auditor's gate for one Report: decode the SignedOutcome, find the
 * signer's public key, verify the signature over the exact outcome bytes, decode those bytes
 * and check the signer reports its own outcome. Pure: no I/O, no state. */
#ifndef QM_REPORT_CHECK_H
#define QM_REPORT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "merkle.h"
#include "report_wire.h"
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

/* Batch roots whose signature was verified already, so that a batch of votes costs one
 * verification. Direct-mapped; a miss only costs a verification. */
#define QM_ROOT_CACHE_SLOTS 1024
struct qm_root_cache {
  struct {
    uint8_t root[32];
    uint8_t sig[64];
    uint32_t provider, count;
    int valid;
  } slot[QM_ROOT_CACHE_SLOTS];
  uint64_t hits, misses;
  struct qm_merkle_memo memo; /* the nodes of the last proof walked, for its neighbours */
};

/* qm_report_check: decodes |msg| as a SignedOutcome and checks it. Returns a verdict; on
 * QM_REPORT_OK |out| holds the vote. |why| (|cap| bytes) gets a human reason naming the
 * offending value for any other verdict. |keys| holds one public key per topology provider
 * (borrowed); |cache| may be NULL. */
enum qm_report_verdict qm_report_check(const uint8_t *msg, size_t len, const struct qm_topology *t,
                                       struct qm_key *const *keys, struct qm_root_cache *cache,
                                       struct qm_vote *out, char *why, size_t cap);
/* qm_report_check_view: the same for a SignedOutcome already walked (a batch's vote). */
enum qm_report_verdict qm_report_check_view(const struct qm_signed_view *so, const struct qm_topology *t,
                                            struct qm_key *const *keys, struct qm_root_cache *cache,
                                            struct qm_vote *out, char *why, size_t cap);

#endif
