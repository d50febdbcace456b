/* test_latency.c: the histogram's buckets tile 1 us..60 s with < 1% width, its percentiles
 * stay within 1% of the exact ones, and clamping, merging and the empty case hold. */
#include <stdlib.h>

#include "check.h"
#include "latency.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next_u64(void) { /* xorshift64 */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double next_unit(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static double rel_err(int64_t got, int64_t want) {
  double d = (double)got - (double)want;
  return (d < 0 ? -d : d) / (double)want;
}

/* rank_of: ceil(q * n) at least 1, without libm (qm_base does not link it). */
static size_t rank_of(double q, size_t n) {
  double x = q * (double)n - 1e-9;
  size_t r = x < 1 ? 1 : (size_t)x;
  if (x > 1 && (double)r < x) r++;
  return r;
}

/* check_against_exact: percentiles of |n| samples versus the sorted samples. */
static void check_against_exact(int64_t *v, size_t n) {
  struct qm_latency *h = NULL;
  CHECK(qm_latency_new(&h) == 0);
  if (!h) return;
  for (size_t i = 0; i < n; i++) qm_latency_record(h, v[i]);
  qsort(v, n, sizeof *v, cmp_i64);
  static const double qs[] = {0.0001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999};
  for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
    size_t rank = rank_of(qs[k], n);
    int64_t want = v[rank - 1], got = qm_latency_percentile(h, qs[k]);
    double e = rel_err(got, want);
    if (e >= 0.01) fprintf(stderr, "q=%g: got %lld want %lld (%.3f%%)\n", qs[k], (long long)got, (long long)want, e * 100);
    CHECK(e < 0.01);
  }
  CHECK_EQ_U(qm_latency_count(h), n);
  CHECK(qm_latency_min(h) == v[0]);
  CHECK(qm_latency_max(h) == v[n - 1]);
  CHECK(qm_latency_percentile(h, 1.0) == v[n - 1]);
  CHECK(qm_latency_percentile(h, 0.0) == v[0]);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  CHECK(rel_err((int64_t)qm_latency_mean(h), (int64_t)(sum / (double)n)) < 1e-6);
  qm_latency_free(h);
}

static void test_geometry(void) {
  unsigned n = qm_latency_buckets();
  CHECK(n > 0 && n < 5000); /* fixed and small */
  CHECK_EQ_U(qm_latency_bucket_of(QM_LATENCY_MIN_NS), 0);
  CHECK_EQ_U(qm_latency_bucket_of(QM_LATENCY_MAX_NS), n - 1);
  CHECK_EQ_U(qm_latency_bucket_of(0), 0);
  CHECK_EQ_U(qm_latency_bucket_of(INT64_MAX), n - 1);
  int64_t lo, hi, prev_hi = 0;
  qm_latency_bucket_bounds(0, &lo, &hi);
  CHECK(lo <= QM_LATENCY_MIN_NS && QM_LATENCY_MIN_NS < hi);
  qm_latency_bucket_bounds(n - 1, &lo, &hi);
  CHECK(lo <= QM_LATENCY_MAX_NS && QM_LATENCY_MAX_NS < hi);
  int tiled = 1, narrow = 1, inverse = 1;
  for (unsigned i = 0; i < n; i++) {
    qm_latency_bucket_bounds(i, &lo, &hi);
    if (i > 0 && lo != prev_hi) tiled = 0;
    if (hi <= lo || (double)(hi - lo) / (double)lo > 1.0 / 128 + 1e-12) narrow = 0;
    int64_t a = lo < QM_LATENCY_MIN_NS ? QM_LATENCY_MIN_NS : lo;
    int64_t b = hi - 1 > QM_LATENCY_MAX_NS ? QM_LATENCY_MAX_NS : hi - 1;
    if (qm_latency_bucket_of(a) != i || qm_latency_bucket_of(b) != i) inverse = 0;
    prev_hi = hi;
  }
  CHECK(tiled);
  CHECK(narrow);
  CHECK(inverse);
}

static void test_empty_and_single(void) {
  struct qm_latency *h = NULL;
  CHECK(qm_latency_new(&h) == 0);
  if (!h) return;
  CHECK_EQ_U(qm_latency_count(h), 0);
  CHECK(qm_latency_percentile(h, 0.5) == 0);
  CHECK(qm_latency_min(h) == 0 && qm_latency_max(h) == 0 && qm_latency_mean(h) == 0);
  qm_latency_record(h, 123457);
  CHECK(qm_latency_percentile(h, 0.5) == 123457); /* kept within the exact min and max */
  CHECK(qm_latency_percentile(h, 0.999) == 123457);
  qm_latency_reset(h);
  CHECK_EQ_U(qm_latency_count(h), 0);
  qm_latency_free(h);
  qm_latency_free(NULL);
}

static void test_clamping(void) {
  struct qm_latency *h = NULL;
  CHECK(qm_latency_new(&h) == 0);
  if (!h) return;
  qm_latency_record(h, -5);
  qm_latency_record(h, 0);
  qm_latency_record(h, 999);
  qm_latency_record(h, 1000);
  qm_latency_record(h, INT64_C(61000000000));
  CHECK_EQ_U(qm_latency_underflows(h), 3);
  CHECK_EQ_U(qm_latency_overflows(h), 1);
  CHECK_EQ_U(qm_latency_count(h), 5);
  CHECK(qm_latency_min(h) == QM_LATENCY_MIN_NS);
  CHECK(qm_latency_max(h) == QM_LATENCY_MAX_NS);
  CHECK(rel_err(qm_latency_percentile(h, 0.5), QM_LATENCY_MIN_NS) < 0.01);
  CHECK(qm_latency_percentile(h, 1.0) == QM_LATENCY_MAX_NS);
  qm_latency_free(h);
}

static void test_merge(void) {
  struct qm_latency *a = NULL, *b = NULL, *all = NULL;
  CHECK(qm_latency_new(&a) == 0 && qm_latency_new(&b) == 0 && qm_latency_new(&all) == 0);
  if (!a || !b || !all) goto out;
  for (int i = 0; i < 20000; i++) {
    int64_t v = 1000 + (int64_t)(next_u64() % 50000000);
    qm_latency_record(i % 3 ? a : b, v);
    qm_latency_record(all, v);
  }
  qm_latency_merge(a, b);
  CHECK_EQ_U(qm_latency_count(a), qm_latency_count(all));
  CHECK(qm_latency_min(a) == qm_latency_min(all) && qm_latency_max(a) == qm_latency_max(all));
  for (double q = 0.05; q < 1; q += 0.05) CHECK(qm_latency_percentile(a, q) == qm_latency_percentile(all, q));
  CHECK(qm_latency_percentile(a, 0.999) == qm_latency_percentile(all, 0.999));
out:
  qm_latency_free(a);
  qm_latency_free(b);
  qm_latency_free(all);
}

int main(void) {
  test_geometry();
  test_empty_and_single();
  test_clamping();
  test_merge();
  enum { N = 200000 };
  int64_t *v = malloc(N * sizeof *v);
  CHECK(v != NULL);
  if (!v) return qm_checks_done();
  /* about log-uniform over the whole range: a random octave, uniform inside it */
  for (size_t i = 0; i < N; i++) {
    int64_t x = (int64_t)(1000.0 * (double)(INT64_C(1) << (next_u64() % 26)) * (1.0 + next_unit()));
    v[i] = x > QM_LATENCY_MAX_NS ? QM_LATENCY_MAX_NS : x;
  }
  check_against_exact(v, N);
  /* what a loopback mesh looks like: a body around 300 us and a tail to 40 ms */
  for (size_t i = 0; i < N; i++)
    v[i] = 200000 + (int64_t)(next_u64() % 200000) + (i % 1000 == 0 ? (int64_t)(next_u64() % 40000000) : 0);
  check_against_exact(v, N);
  /* every integer microsecond once: the percentiles are known in closed form */
  for (size_t i = 0; i < 10000; i++) v[i] = (int64_t)(i + 1) * 1000;
  check_against_exact(v, 10000);
  /* few distinct values: exact values come back through the min/max clamp or the bucket */
  for (size_t i = 0; i < 1000; i++) v[i] = i < 990 ? 50000 : 9000000;
  check_against_exact(v, 1000);
  free(v);
  return qm_checks_done();
}
