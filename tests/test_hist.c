/* test_hist.c: bucket edges, cumulative counts, sum and count. */
#include "check.h"
#include "hist.h"

int main(void) {
  struct qm_hist h = {0};
  qm_hist_observe_ns(&h, 50000);      /* 50 us -> le 0.0001 */
  qm_hist_observe_ns(&h, 100000);     /* exactly 100 us -> le 0.0001 */
  qm_hist_observe_ns(&h, 100001);     /* just above -> le 0.00025 */
  qm_hist_observe_ns(&h, 3000000);    /* 3 ms -> le 0.005 */
  qm_hist_observe_ns(&h, 60000000000); /* 60 s: above every bound, only in count */
  qm_hist_observe_ns(&h, -5);          /* a clock step back counts as 0 */
  uint64_t c[QM_HIST_BUCKETS];
  qm_hist_cumulative(&h, c);
  CHECK_EQ_U(c[0], 3);
  CHECK_EQ_U(c[1], 4);
  CHECK_EQ_U(c[4], 4);
  CHECK_EQ_U(c[5], 5);
  CHECK_EQ_U(c[QM_HIST_BUCKETS - 1], 5);
  CHECK_EQ_U(h.count, 6);
  CHECK(h.sum > 60.003 && h.sum < 60.0033);
  for (size_t i = 1; i < QM_HIST_BUCKETS; i++) CHECK(qm_hist_bounds[i] > qm_hist_bounds[i - 1]);
  return qm_checks_done();
}
