/* hist.c: fixed-bucket latency histograms. */
#include "hist.h"

const double qm_hist_bounds[QM_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};

void qm_hist_observe_ns(struct qm_hist *h, int64_t ns) {
  double s = ns > 0 ? (double)ns / 1e9 : 0.0;
  h->count++;
  h->sum += s;
  for (size_t i = 0; i < QM_HIST_BUCKETS; i++)
    if (s <= qm_hist_bounds[i]) {
      h->counts[i]++;
      return;
    }
}

void qm_hist_cumulative(const struct qm_hist *h, uint64_t *out) {
  uint64_t run = 0;
  for (size_t i = 0; i < QM_HIST_BUCKETS; i++) {
    run += h->counts[i];
    out[i] = run;
  }
}
