/* test_decision_times: decision times by sequence: first record wins, growth keeps earlier
 * entries, sequences past the cap are counted, not kept. */
#include "check.h"
#include "decision_times.h"

int main(void) {
  struct qm_decision_times t = {0};
  CHECK(qm_decision_times_get(&t, 0) == 0);
  qm_decision_times_record(&t, 5, 500);
  qm_decision_times_record(&t, 5, 999); /* a second record of one sequence does not move it */
  CHECK(qm_decision_times_get(&t, 5) == 500);
  CHECK(qm_decision_times_get(&t, 4) == 0 && qm_decision_times_get(&t, 6) == 0);
  qm_decision_times_record(&t, 100000, 7); /* grows past the first block */
  CHECK(qm_decision_times_get(&t, 100000) == 7 && qm_decision_times_get(&t, 5) == 500);
  CHECK(qm_decision_times_get(&t, 99999) == 0 && qm_decision_times_get(&t, 1u << 30) == 0);
  qm_decision_times_record(&t, QM_DECISION_TIMES_MAX - 1, 9);
  CHECK(qm_decision_times_get(&t, QM_DECISION_TIMES_MAX - 1) == 9 && t.cap == QM_DECISION_TIMES_MAX);
  CHECK(t.dropped == 0);
  qm_decision_times_record(&t, QM_DECISION_TIMES_MAX, 9);
  qm_decision_times_record(&t, UINT64_MAX, 9);
  CHECK(t.dropped == 2 && qm_decision_times_get(&t, QM_DECISION_TIMES_MAX) == 0);
  qm_decision_times_record(&t, 3, 0); /* time 0 is stored as 1: 0 means "not decided" */
  CHECK(qm_decision_times_get(&t, 3) == 1);
  qm_decision_times_free(&t);
  CHECK(t.ns == NULL && t.cap == 0);
  return qm_checks_done();
}
