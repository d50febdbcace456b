/* auditor_state.h: the auditor's books: the quorum tables, the summary and per-request
 * views as packed messages, and (optionally) the audit log. Loop-thread only. */
#ifndef QM_AUDITOR_STATE_H
#define QM_AUDITOR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "quorum.h"
#include "report_check.h"
#include "topology.h"

struct qm_auditor_state;

/* qm_auditor_state_new: |topo| is borrowed; |audit_log| may be NULL. */
int qm_auditor_state_new(const struct qm_topology *topo, const char *audit_log,
                         struct qm_auditor_state **out, struct qm_err *err);
void qm_auditor_state_free(struct qm_auditor_state *s);
/* qm_auditor_state_counters: the auditor's rejection counters, shown in the summary. */
void qm_auditor_state_counters(struct qm_auditor_state *s, const uint64_t *malformed,
                               const uint64_t *unknown_signer, const uint64_t *bad_signature,
                               const uint64_t *signer_mismatch, const uint64_t *refused_full);
/* qm_auditor_state_vote: a verified vote (|raw| is the SignedOutcome as received, for the
 * log). Returns a qm_vote_result or a negative code. */
int qm_auditor_state_vote(struct qm_auditor_state *s, const uint8_t *raw, size_t raw_len,
                          const struct qm_vote *v);
void qm_auditor_state_expire(struct qm_auditor_state *s);
/* Packed qmesh.v1.Summary / LookupReply in a malloc'd buffer (NULL when out of memory). */
uint8_t *qm_auditor_state_summary(struct qm_auditor_state *s, size_t *len);
int qm_auditor_state_lookup(struct qm_auditor_state *s, const uint8_t repr[32], uint8_t **out, size_t *len);

#endif
