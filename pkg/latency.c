/* latency.c: the log-linear latency histogram: bucket geometry, recording, percentiles. */
#include "latency.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Raw geometry over all of uint64: values below 2^SUB_BITS have a bucket each; above, each
 * power of two [2^e, 2^(e+1)) is cut into SUB equal buckets of width 2^(e-SUB_BITS), so a
 * bucket is at most 1/SUB of its lower bound wide. raw(v) = (e - SUB_BITS) * SUB + (v >> (e - SUB_BITS)). */
#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
/* raw(QM_LATENCY_MIN_NS) and raw(QM_LATENCY_MAX_NS): only these buckets are stored (the
 * unit test checks both against raw()). */
#define RAW_FIRST 506u
#define RAW_LAST 3807u
#define NBUCKETS (RAW_LAST - RAW_FIRST + 1)

struct qm_latency {
  uint64_t count, under, over;
  int64_t min, max;
  double sum;
  uint64_t b[NBUCKETS];
};

static unsigned raw_index(uint64_t v) {
  if (v < SUB) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = e - SUB_BITS;
  return shift * SUB + (unsigned)(v >> shift);
}

static void raw_bounds(unsigned i, uint64_t *lo, uint64_t *hi) {
  if (i < SUB) {
    *lo = i;
    *hi = (uint64_t)i + 1;
    return;
  }
  unsigned shift = i / SUB - 1;
  uint64_t m = i - shift * SUB; /* in [SUB, 2*SUB) */
  *lo = m << shift;
  *hi = (m + 1) << shift;
}

static int64_t clamp(int64_t ns) {
  if (ns < QM_LATENCY_MIN_NS) return QM_LATENCY_MIN_NS;
  if (ns > QM_LATENCY_MAX_NS) return QM_LATENCY_MAX_NS;
  return ns;
}

unsigned qm_latency_buckets(void) { return NBUCKETS; }

unsigned qm_latency_bucket_of(int64_t ns) { return raw_index((uint64_t)clamp(ns)) - RAW_FIRST; }

void qm_latency_bucket_bounds(unsigned index, int64_t *lo, int64_t *hi) {
  uint64_t l, h;
  raw_bounds(index + RAW_FIRST, &l, &h);
  *lo = (int64_t)l;
  *hi = (int64_t)h;
}

int qm_latency_new(struct qm_latency **out) {
  struct qm_latency *h = malloc(sizeof *h);
  if (!h) return -ENOMEM;
  qm_latency_reset(h);
  *out = h;
  return 0;
}

void qm_latency_free(struct qm_latency *h) { free(h); }

void qm_latency_reset(struct qm_latency *h) { memset(h, 0, sizeof *h); }

void qm_latency_record(struct qm_latency *h, int64_t ns) {
  if (ns < QM_LATENCY_MIN_NS) h->under++;
  else if (ns > QM_LATENCY_MAX_NS) h->over++;
  int64_t v = clamp(ns);
  h->b[qm_latency_bucket_of(v)]++;
  if (!h->count || v < h->min) h->min = v;
  if (!h->count || v > h->max) h->max = v;
  h->count++;
  h->sum += (double)v;
}

void qm_latency_merge(struct qm_latency *dst, const struct qm_latency *src) {
  if (!src->count) return;
  for (unsigned i = 0; i < NBUCKETS; i++) dst->b[i] += src->b[i];
  if (!dst->count || src->min < dst->min) dst->min = src->min;
  if (!dst->count || src->max > dst->max) dst->max = src->max;
  dst->count += src->count;
  dst->under += src->under;
  dst->over += src->over;
  dst->sum += src->sum;
}

uint64_t qm_latency_count(const struct qm_latency *h) { return h->count; }
uint64_t qm_latency_underflows(const struct qm_latency *h) { return h->under; }
uint64_t qm_latency_overflows(const struct qm_latency *h) { return h->over; }
int64_t qm_latency_min(const struct qm_latency *h) { return h->count ? h->min : 0; }
int64_t qm_latency_max(const struct qm_latency *h) { return h->count ? h->max : 0; }
double qm_latency_mean(const struct qm_latency *h) { return h->count ? h->sum / (double)h->count : 0; }

int64_t qm_latency_percentile(const struct qm_latency *h, double q) {
  if (!h->count) return 0;
  if (!(q > 0)) return h->min;
  if (q >= 1) return h->max;
  /* The rank of the sample asked for; the epsilon keeps 0.99 * 100 at 99, not 100. */
  double x = q * (double)h->count - 1e-9;
  uint64_t rank = x < 1 ? 1 : (uint64_t)x;
  if (x > 1 && (double)rank < x) rank++; /* ceil without libm */
  if (rank > h->count) rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < NBUCKETS; i++) {
    seen += h->b[i];
    if (seen < rank) continue;
    int64_t lo, hi;
    qm_latency_bucket_bounds(i, &lo, &hi);
    int64_t mid = lo + (hi - lo - 1) / 2;
    if (mid < h->min) mid = h->min;
    if (mid > h->max) mid = h->max;
    return mid;
  }
  return h->max;
}
