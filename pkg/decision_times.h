/* decision_times.h: when each request was decided (wall clock), by sequence, so that a
 * client can measure submit->decision latency against its own submit times (qmesh bench).
 * A growable array up to a fixed number of sequences; later ones are counted, not kept. */
#ifndef QM_DECISION_TIMES_H
#define QM_DECISION_TIMES_H

#include <stddef.h>
#include <stdint.h>

#define QM_DECISION_TIMES_MAX (1u << 22) /* sequences kept: 4M (32 MiB at most) */

struct qm_decision_times {
  int64_t *ns; /* unix ns per sequence; 0: not decided */
  size_t cap;
  uint64_t dropped; /* decisions of sequences >= QM_DECISION_TIMES_MAX, or out of memory */
};

/* qm_decision_times_record: |seq| was decided at |unix_ns| (the first record wins). */
void qm_decision_times_record(struct qm_decision_times *t, uint64_t seq, int64_t unix_ns);
/* qm_decision_times_get: the time |seq| was decided, 0 if not (or not kept). */
int64_t qm_decision_times_get(const struct qm_decision_times *t, uint64_t seq);
void qm_decision_times_free(struct qm_decision_times *t);

#endif
