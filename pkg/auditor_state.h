/* auditor_state.h: the auditor's books: the quorum tables, the summary and per-request
 * views as packed messages, and (optionally) the audit log. Loop-thread only. */
#ifndef QM_AUDITOR_STATE_H
#define QM_AUDITOR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "quorum.h"
#include "audit_log.h"
#include "decision_times.h"
#include "hist.h"
#include "report_check.h"
#include "topology.h"

struct qm_auditor_state;

/* qm_auditor_state_new: |topo| and |keys| (one public key per provider) are borrowed.
 * With |audit_log|, the log is verified and replayed (every record through the same checks
 * as a live Report) before anything else; a record that fails stops the start with its
 * index named. */
int qm_auditor_state_new(const struct qm_topology *topo, struct qm_key *const *keys, const char *audit_log,
                         enum qm_fsync_policy fsync, struct qm_auditor_state **out, struct qm_err *err);
/* For Stats: the decision latency histogram (borrowed), and levels. */
void qm_auditor_state_set_latency(struct qm_auditor_state *s, struct qm_hist *h);
int64_t qm_auditor_state_pending(const struct qm_auditor_state *s);
/* qm_auditor_state_times: when each live decision was made, by sequence. */
const struct qm_decision_times *qm_auditor_state_times(const struct qm_auditor_state *s);
/* qm_auditor_state_sync_errors: failed fdatasync calls of the audit log's sync thread. */
uint64_t qm_auditor_state_sync_errors(const struct qm_auditor_state *s);
int64_t qm_auditor_state_reorder_waiting(const struct qm_auditor_state *s);
/* qm_auditor_state_sync: the batch fsync of the log (every tick). */
void qm_auditor_state_sync(struct qm_auditor_state *s);
/* qm_auditor_state_replayed: records replayed at start. */
uint64_t qm_auditor_state_replayed(const struct qm_auditor_state *s);
/* Packed qmesh.v1.DriftTrace (NULL when out of memory). */
uint8_t *qm_auditor_state_drift(struct qm_auditor_state *s, size_t *len);
void qm_auditor_state_free(struct qm_auditor_state *s);
/* qm_auditor_state_counters: the auditor's rejection counters, shown in the summary. */
void qm_auditor_state_counters(struct qm_auditor_state *s, const uint64_t *malformed,
                               const uint64_t *unknown_signer, const uint64_t *bad_signature,
                               const uint64_t *signer_mismatch, const uint64_t *refused_full);
/* qm_auditor_state_vote: a verified vote (|raw| is the SignedOutcome as received; accepted
 * votes are appended to the log before this returns). Returns a qm_vote_result, -ENOSPC
 * (pending requests full) or -EIO (the log could not be written: the vote is not taken). */
int qm_auditor_state_vote(struct qm_auditor_state *s, const uint8_t *raw, size_t raw_len,
                          const struct qm_vote *v);
/* qm_auditor_state_vote_many: |n| verified votes: the new ones are logged with one write,
 * then all are counted; |results[i]| as qm_auditor_state_vote returns. */
void qm_auditor_state_vote_many(struct qm_auditor_state *s, const struct qm_vote *v, const uint8_t *const *raw,
                                const size_t *raw_len, size_t n, int *results);
void qm_auditor_state_expire(struct qm_auditor_state *s);
/* Packed qmesh.v1.Summary / LookupReply in a malloc'd buffer (NULL when out of memory). */
uint8_t *qm_auditor_state_summary(struct qm_auditor_state *s, size_t *len);
int qm_auditor_state_lookup(struct qm_auditor_state *s, const uint8_t repr[32], uint8_t **out, size_t *len);

#endif
