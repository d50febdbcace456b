/* test_quorum.c: the auditor's aggregation: k-of-n, disagreement, deadlines, duplicates,
 * late votes, bounds and eviction. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "quorum.h"

static const char *domains[] = {"payments", "identity", "storage"};

static void repr_of(uint8_t r[32], unsigned n) {
  memset(r, 0, 32);
  memcpy(r, &n, sizeof n);
  r[31] = 0x5a;
}

struct seen {
  unsigned n;
  uint64_t seq[16];
  int success[16], complete[16];
};

static void on_decision(void *arg, const struct qm_decision *d) {
  struct seen *s = arg;
  if (s->n < 16) {
    s->seq[s->n] = d->sequence;
    s->success[s->n] = d->success;
    s->complete[s->n] = d->complete;
  }
  s->n++;
}

static struct qm_quorum *make(size_t pending, size_t retain) {
  struct qm_quorum_params p = {.nproviders = 3, .k = 2, .deadline_ns = 1000, .ndomains = 3, .domains = domains,
                               .pending_max = pending, .retain_max = retain};
  struct qm_quorum *q = NULL;
  CHECK(qm_quorum_new(&p, &q) == 0);
  return q;
}

static void test_complete_and_disagreement(void) {
  struct qm_quorum *q = make(16, 16);
  struct seen seen = {0};
  qm_quorum_on_decision(q, on_decision, &seen);
  uint8_t r[32];
  repr_of(r, 1);
  /* 2 of 3 say yes: success; provider 2 disagrees. */
  CHECK_EQ_U(qm_quorum_vote(q, r, 7, "storage", 0, 1, 0, 10), QM_VOTE_ACCEPTED);
  CHECK_EQ_U(qm_quorum_vote(q, r, 7, "storage", 1, 1, 0, 11), QM_VOTE_ACCEPTED);
  CHECK_EQ_U(seen.n, 0);
  CHECK_EQ_U(qm_quorum_vote(q, r, 7, "storage", 2, 0, 0, 12), QM_VOTE_ACCEPTED);
  CHECK_EQ_U(seen.n, 1);
  CHECK_EQ_U(seen.seq[0], 7);
  CHECK(seen.success[0] && seen.complete[0]);
  /* A vote after the decision is late, never counted again. */
  CHECK_EQ_U(qm_quorum_vote(q, r, 7, "storage", 2, 1, 0, 13), QM_VOTE_LATE);
  repr_of(r, 2);
  /* 1 of 3: failure; provider 0 disagrees. */
  qm_quorum_vote(q, r, 8, "payments", 0, 1, 0, 20);
  CHECK_EQ_U(qm_quorum_vote(q, r, 8, "payments", 0, 1, 0, 21), QM_VOTE_DUPLICATE);
  qm_quorum_vote(q, r, 8, "payments", 1, 0, 0, 22);
  qm_quorum_vote(q, r, 8, "payments", 2, 0, 0, 23);
  struct qm_quorum_stats st;
  qm_quorum_stats(q, &st);
  CHECK_EQ_U(st.decided, 2);
  CHECK_EQ_U(st.successes, 1);
  CHECK_EQ_U(st.failures, 1);
  CHECK_EQ_U(st.duplicate, 1);
  CHECK_EQ_U(st.late, 1);
  CHECK_EQ_U(st.accepted, 6);
  CHECK_EQ_U(st.incomplete, 0);
  CHECK_EQ_U(qm_quorum_provider(q, 0)->disagreements, 1);
  CHECK_EQ_U(qm_quorum_provider(q, 1)->disagreements, 0);
  CHECK_EQ_U(qm_quorum_provider(q, 2)->disagreements, 1);
  CHECK_EQ_U(qm_quorum_provider(q, 0)->votes, 2);
  CHECK_EQ_U(qm_quorum_provider(q, 0)->initiations, 2);
  CHECK_EQ_U(qm_quorum_provider(q, 0)->initiations_by_domain[2], 1); /* storage */
  CHECK_EQ_U(qm_quorum_provider(q, 0)->initiations_by_domain[0], 1); /* payments */
  struct qm_request_view v;
  CHECK(qm_quorum_lookup(q, r, &v) == 0);
  CHECK(v.state == QM_REQ_DECIDED && !v.success && v.votes[0] == 1 && v.votes[1] == 0);
  qm_quorum_free(q);
}

static void test_deadline_and_unknown_domain(void) {
  struct qm_quorum *q = make(16, 16);
  struct seen seen = {0};
  qm_quorum_on_decision(q, on_decision, &seen);
  uint8_t a[32], b[32];
  repr_of(a, 1);
  repr_of(b, 2);
  qm_quorum_vote(q, a, 1, "storage", 0, 1, 0, 100);
  qm_quorum_vote(q, a, 1, "storage", 1, 1, 0, 150);
  qm_quorum_vote(q, b, 2, "weather", 0, 1, 0, 600);
  qm_quorum_expire(q, 1099); /* a's deadline is 1100 */
  CHECK_EQ_U(seen.n, 0);
  qm_quorum_expire(q, 1100);
  CHECK_EQ_U(seen.n, 1);
  CHECK(seen.success[0] && !seen.complete[0]); /* 2 yes of the 2 in: success, incomplete */
  qm_quorum_expire(q, 1600);
  CHECK_EQ_U(seen.n, 2);
  CHECK(!seen.success[1]);
  struct qm_quorum_stats st;
  qm_quorum_stats(q, &st);
  CHECK_EQ_U(st.incomplete, 2);
  CHECK_EQ_U(st.unknown_domain, 1);
  CHECK_EQ_U(st.pending, 0);
  CHECK_EQ_U(qm_quorum_provider(q, 2)->votes, 0); /* missing votes are not counted */
  CHECK_EQ_U(qm_quorum_provider(q, 0)->initiations_by_domain[3], 1); /* "other" */
  /* the missing vote arrives after the deadline: late */
  CHECK_EQ_U(qm_quorum_vote(q, a, 1, "storage", 2, 0, 0, 2000), QM_VOTE_LATE);
  qm_quorum_free(q);
}

static void test_bounds(void) {
  struct qm_quorum *q = make(2, 2);
  uint8_t r[32];
  for (unsigned i = 0; i < 2; i++) {
    repr_of(r, i);
    CHECK_EQ_U(qm_quorum_vote(q, r, i, "storage", 0, 1, 0, 1), QM_VOTE_ACCEPTED);
  }
  repr_of(r, 9);
  CHECK(qm_quorum_vote(q, r, 9, "storage", 0, 1, 0, 1) == -ENOSPC); /* pending is full */
  struct qm_quorum_stats st;
  qm_quorum_stats(q, &st);
  CHECK_EQ_U(st.refused_full, 1);
  for (unsigned i = 0; i < 2; i++) { /* complete the two pending requests */
    repr_of(r, i);
    qm_quorum_vote(q, r, i, "storage", 1, 1, 0, 2);
    qm_quorum_vote(q, r, i, "storage", 2, 1, 0, 2);
  }
  /* Decide many: only retain_max decided requests are remembered. */
  for (unsigned i = 100; i < 110; i++) {
    repr_of(r, i);
    qm_quorum_vote(q, r, i, "storage", 0, 1, 0, 5);
    qm_quorum_vote(q, r, i, "storage", 1, 1, 0, 5);
    qm_quorum_vote(q, r, i, "storage", 2, 1, 0, 5);
  }
  qm_quorum_stats(q, &st);
  CHECK_EQ_U(st.decided, 12);
  CHECK_EQ_U(st.evicted, 10);
  struct qm_request_view v;
  repr_of(r, 100);
  CHECK(qm_quorum_lookup(q, r, &v) == -ENOENT);
  repr_of(r, 109);
  CHECK(qm_quorum_lookup(q, r, &v) == 0);
  CHECK(qm_quorum_vote(q, r, 1, "storage", 3, 1, 0, 5) == -EINVAL); /* no such provider */
  qm_quorum_free(q);
}

static void test_params(void) {
  struct qm_quorum_params p = {.nproviders = 3, .k = 4, .deadline_ns = 1, .pending_max = 1};
  struct qm_quorum *q = (struct qm_quorum *)&p; /* must stay untouched */
  CHECK(qm_quorum_new(&p, &q) == -EINVAL);
  CHECK(q == (struct qm_quorum *)&p);
  p.k = 0;
  CHECK(qm_quorum_new(&p, &q) == -EINVAL);
  qm_quorum_free(NULL);
}

int main(void) {
  test_complete_and_disagreement();
  test_deadline_and_unknown_domain();
  test_bounds();
  test_params();
  return qm_checks_done();
}
