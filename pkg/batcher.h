/* batcher.h: a provider's votes on their way to the auditor: collected while earlier batches
 * are in flight, signed once per batch (a Merkle root, each vote with its own proof), sent as
 * one ReportBatch, retried while the auditor is away, answered vote by vote to the hub calls
 * waiting for them. Loop-thread only. */
#ifndef QM_BATCHER_H
#define QM_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "rpc.h"
#include "sign.h"

#define QM_BATCH_MAX 1024            /* votes per signed batch */
#define QM_BATCH_BYTES_MAX (1 << 20) /* Outcome bytes per batch (the auditor takes 4 MiB) */
#define QM_BATCHES_IN_FLIGHT 1       /* send at once while fewer batches are in flight */

struct qm_batcher_counters {
  uint64_t *reported;      /* votes the auditor took (accepted, duplicate or late) */
  uint64_t *rejected;      /* votes the auditor refused */
  uint64_t *failed;        /* votes given up on (auditor unreachable past the retry window) */
  uint64_t *retries;       /* batch resends */
  uint64_t *batches;       /* batches signed */
  struct qm_hist *latency; /* a vote's wait from decision to the auditor's answer (or NULL) */
};

struct qm_batcher;

/* qm_batcher_new: |auditor| and |key| are borrowed; |key_id| is the provider's id. */
int qm_batcher_new(struct qm_channel *auditor, const char *key_id, const struct qm_key *key,
                   const struct qm_batcher_counters *counters, struct qm_batcher **out);
/* What becomes of one vote: |status| OK when the auditor took it (accepted, duplicate or
 * late), else why not. Runs exactly once per added vote. */
typedef void (*qm_vote_done_fn)(void *arg, int status, const char *why);

/* qm_batcher_add: queues |outcome| (the serialized Outcome, copied); |done(arg, ...)| runs
 * when the auditor answered for this vote. 0 or -ENOMEM (then |done| never runs). */
int qm_batcher_add(struct qm_batcher *b, const uint8_t *outcome, size_t len, qm_vote_done_fn done, void *arg);
/* qm_batcher_hold / qm_batcher_release: between them, votes only gather (unless a batch is
 * full); release sends what gathered if the in-flight bound allows. A caller adding many
 * votes at once (one EvaluateBatch) holds, so they share one signature. Nestable. */
void qm_batcher_hold(struct qm_batcher *b);
void qm_batcher_release(struct qm_batcher *b);
/* qm_batcher_tick: resends due retries and flushes what waits; call it every few ms. */
void qm_batcher_tick(struct qm_batcher *b, int stopping);
size_t qm_batcher_pending(const struct qm_batcher *b);
unsigned qm_batcher_inflight(const struct qm_batcher *b);
void qm_batcher_free(struct qm_batcher *b);

#endif
