/* test_reorder.c: decisions come back in sequence order; gaps and stragglers are counted. */
#include <string.h>

#include "check.h"
#include "reorder.h"

static uint64_t got[64];
static size_t ngot;

static void take(void *arg, uint64_t seq, size_t domain, const int8_t *votes, int success) {
  (void)arg;
  (void)success;
  CHECK(votes[0] == (int8_t)(seq & 0x7f) && votes[1] == -1 && domain == seq % 3);
  if (ngot < 64) got[ngot++] = seq;
}

static void push(struct qm_reorder *r, uint64_t seq) {
  int8_t v[2] = {(int8_t)(seq & 0x7f), -1};
  qm_reorder_push(r, seq, seq % 3, v, 1);
}

int main(void) {
  struct qm_reorder *r = NULL;
  CHECK(qm_reorder_new(2, 4, take, NULL, &r) == 0);
  uint64_t order[] = {2, 0, 1, 4, 3, 5};
  for (size_t i = 0; i < 6; i++) push(r, order[i]);
  CHECK_EQ_U(ngot, 6);
  for (size_t i = 0; i < 6; i++) CHECK_EQ_U(got[i], i);
  /* a gap: 6 never comes; the window (4) overflows and the detector moves on */
  for (uint64_t s = 7; s <= 11; s++) push(r, s);
  CHECK_EQ_U(ngot, 11);
  CHECK_EQ_U(got[6], 7);
  CHECK_EQ_U(qm_reorder_gaps(r), 1);
  push(r, 6); /* the straggler is behind: skipped, not fed out of order */
  CHECK_EQ_U(qm_reorder_skipped(r), 1);
  push(r, 20);
  push(r, 15);
  CHECK_EQ_U(qm_reorder_waiting(r), 2);
  qm_reorder_flush(r);
  CHECK_EQ_U(got[ngot - 2], 15);
  CHECK_EQ_U(got[ngot - 1], 20);
  CHECK_EQ_U(qm_reorder_waiting(r), 0);
  /* a stray sequence far ahead is not fed and does not move the order */
  size_t before = ngot;
  push(r, 1000000000000ull);
  CHECK_EQ_U(qm_reorder_skipped(r), 2);
  push(r, 21);
  CHECK_EQ_U(ngot, before + 1);
  CHECK_EQ_U(got[ngot - 1], 21);
  /* flush crosses gaps of at most one window */
  push(r, 23);
  push(r, 23 + 4 + 10);
  qm_reorder_flush(r);
  CHECK_EQ_U(got[ngot - 1], 23);
  CHECK_EQ_U(qm_reorder_waiting(r), 1);
  qm_reorder_free(r);
  CHECK(qm_reorder_new(0, 4, take, NULL, &r) != 0);
  return qm_checks_done();
}
