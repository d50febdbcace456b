/* latency.h: a fixed-memory latency histogram (HDR-style log-linear buckets): 128 linear
 * sub-buckets per power of two of nanoseconds, so a recorded value and the value reported
 * for its bucket differ by less than 0.4% (always < 1%), from QM_LATENCY_MIN_NS (1 us) to
 * QM_LATENCY_MAX_NS (60 s). Values outside are clamped to the range and counted. No
 * allocation after qm_latency_new; not thread-safe (one writer at a time). */
#ifndef QM_LATENCY_H
#define QM_LATENCY_H

#include <stdint.h>

#define QM_LATENCY_MIN_NS INT64_C(1000)        /* 1 us */
#define QM_LATENCY_MAX_NS INT64_C(60000000000) /* 60 s */

struct qm_latency;

/* qm_latency_new: an empty histogram (about 26 KiB). Returns 0 or -ENOMEM; on failure
 * |*out| is untouched. */
int qm_latency_new(struct qm_latency **out);
/* qm_latency_free: NULL-safe. */
void qm_latency_free(struct qm_latency *h);
void qm_latency_reset(struct qm_latency *h);

/* qm_latency_record: one sample of |ns| nanoseconds (clamped to [MIN, MAX]). */
void qm_latency_record(struct qm_latency *h, int64_t ns);
/* qm_latency_merge: adds every sample of |src| to |dst|. */
void qm_latency_merge(struct qm_latency *dst, const struct qm_latency *src);

uint64_t qm_latency_count(const struct qm_latency *h);
/* Samples clamped up to MIN / down to MAX (the bound that was hit, counted). */
uint64_t qm_latency_underflows(const struct qm_latency *h);
uint64_t qm_latency_overflows(const struct qm_latency *h);
/* Exact min / max of the clamped samples and their mean; 0 when empty. */
int64_t qm_latency_min(const struct qm_latency *h);
int64_t qm_latency_max(const struct qm_latency *h);
double qm_latency_mean(const struct qm_latency *h);
/* qm_latency_percentile: the value at or below which |q| (0..1) of the samples lie: the
 * bucket holding the ceil(q*count)-th smallest sample, reported as its midpoint (kept within
 * the exact min and max). Returns 0 when empty. */
int64_t qm_latency_percentile(const struct qm_latency *h, double q);

/* The bucket geometry, for tests: the index of |ns| and the bounds [lo, hi) of a bucket. */
unsigned qm_latency_bucket_of(int64_t ns);
void qm_latency_bucket_bounds(unsigned index, int64_t *lo, int64_t *hi);
unsigned qm_latency_buckets(void);

#endif
