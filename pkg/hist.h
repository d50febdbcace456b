/* hist.h: a fixed-bucket latency histogram in Prometheus' shape (cumulative "le" buckets),
 * for the roles' Stats and /metrics. Fixed memory; observing is a few comparisons. */
#ifndef QM_HIST_H
#define QM_HIST_H

#include <stddef.h>
#include <stdint.h>

#define QM_HIST_BUCKETS 16

extern const double qm_hist_bounds[QM_HIST_BUCKETS]; /* seconds: 100 us ... 10 s */

struct qm_hist {
  uint64_t counts[QM_HIST_BUCKETS]; /* observations <= bound i (not cumulative) */
  uint64_t count;                   /* all, including those above the last bound */
  double sum;                       /* seconds */
};

/* qm_hist_observe_ns: one observation of |ns| nanoseconds (negative counts as 0). */
void qm_hist_observe_ns(struct qm_hist *h, int64_t ns);
/* qm_hist_cumulative: counts of observations <= each bound into |out| (QM_HIST_BUCKETS). */
void qm_hist_cumulative(const struct qm_hist *h, uint64_t *out);

#endif
