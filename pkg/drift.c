/* drift.c: per-provider CUSUM of "inverted" against "as its peers" over the votes (drift.h). */
#include "drift.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One vote kept in a provider's ring, to locate the change once it is suspected. */
struct drift_vote {
  uint64_t seq;
  uint32_t domain;
  uint8_t vote;
};

/* The downsampled trace: points are maxima over runs of |stride| observations; the last
 * point may be a run still filling (|last_count| < |stride|). */
struct drift_trace {
  uint64_t seqs[QM_DRIFT_TRACE_MAX];
  double values[QM_DRIFT_TRACE_MAX];
  size_t len;
  uint64_t stride;
  uint64_t last_count;
};

struct drift_provider {
  double stat;        /* CUSUM statistic, >= 0 */
  double peak;
  int seen;           /* any vote observed */
  uint64_t exc_start; /* first sequence of the latest excursion above zero */
  int alarmed;
  uint64_t alarm_at;
  size_t after_alarm; /* ring entries written since the alarm */
  struct drift_vote *ring;
  size_t ring_head, ring_len; /* oldest entry at ring_head */
  struct drift_trace trace;
};

struct qm_drift {
  struct qm_drift_params p;
  size_t nproviders;
  size_t nslots; /* ndomains + 1: the last one pools unknown domains */
  /* Pooled history, per domain, of the votes of every provider not suspected (yet). */
  uint64_t *pool_ones, *pool_n;
  struct drift_provider *prov;
};

void qm_drift_params_default(struct qm_drift_params *p) {
  memset(p, 0, sizeof *p);
  p->threshold = 12.0;
  p->prior_votes = 30.0;
  p->rate_floor = 0.02;
  p->window = 1024;
  p->tolerance = 60;
}

static int params_valid(const struct qm_drift_params *p) {
  return isfinite(p->threshold) && p->threshold > 0.0 && isfinite(p->prior_votes) &&
         p->prior_votes >= 0.0 && p->rate_floor > 0.0 && p->rate_floor < 0.5 &&
         p->window >= 16 && p->window <= QM_DRIFT_WINDOW_MAX;
}

void qm_drift_free(struct qm_drift *d) {
  if (!d)
    return;
  if (d->prov) {
    for (size_t i = 0; i < d->nproviders; i++)
      free(d->prov[i].ring);
    free(d->prov);
  }
  free(d->pool_ones);
  free(d);
}

int qm_drift_new(size_t nproviders, size_t ndomains, const struct qm_drift_params *p,
                 struct qm_drift **out) {
  struct qm_drift *d;
  struct qm_drift_params defaults;

  if (!p) {
    qm_drift_params_default(&defaults);
    p = &defaults;
  }
  if (nproviders == 0 || ndomains >= SIZE_MAX / 4 || !params_valid(p))
    return -EINVAL;
  d = calloc(1, sizeof *d);
  if (!d)
    return -ENOMEM;
  d->p = *p;
  d->nproviders = nproviders;
  d->nslots = ndomains + 1;
  d->pool_ones = calloc(2 * d->nslots, sizeof *d->pool_ones);
  d->prov = calloc(nproviders, sizeof *d->prov);
  if (!d->pool_ones || !d->prov)
    goto fail;
  d->pool_n = d->pool_ones + d->nslots;
  for (size_t i = 0; i < nproviders; i++) {
    struct drift_provider *v = &d->prov[i];
    v->ring = calloc(p->window, sizeof *v->ring);
    if (!v->ring)
      goto fail;
    v->trace.stride = 1;
  }
  *out = d;
  return 0;

fail:
  qm_drift_free(d);
  return -ENOMEM;
}

size_t qm_drift_nproviders(const struct qm_drift *d) { return d ? d->nproviders : 0; }

/* rate: the pooled initiation rate of |slot|, shrunk towards 0.5 and clamped. */
static double rate(const struct qm_drift *d, size_t slot) {
  double r = ((double)d->pool_ones[slot] + 0.5 * d->p.prior_votes) /
             ((double)d->pool_n[slot] + d->p.prior_votes);
  double lo = d->p.rate_floor;
  return r < lo ? lo : r > 1.0 - lo ? 1.0 - lo : r;
}

/* llr: log P(vote | inverted, rate 1-r) / P(vote | as before, rate r). */
static double llr(double r, int vote) {
  double l = log((1.0 - r) / r);
  return vote ? l : -l;
}

static void trace_push(struct drift_trace *t, uint64_t seq, double value) {
  if (t->len > 0 && t->last_count < t->stride) {
    size_t k = t->len - 1;
    if (value > t->values[k])
      t->values[k] = value;
    t->seqs[k] = seq;
    t->last_count++;
    return;
  }
  if (t->len == QM_DRIFT_TRACE_MAX) { /* all runs full: merge pairs, double the stride */
    for (size_t k = 0; k < QM_DRIFT_TRACE_MAX / 2; k++) {
      double a = t->values[2 * k], b = t->values[2 * k + 1];
      t->values[k] = a > b ? a : b;
      t->seqs[k] = t->seqs[2 * k + 1];
    }
    t->len = QM_DRIFT_TRACE_MAX / 2;
    t->stride *= 2;
  }
  t->seqs[t->len] = seq;
  t->values[t->len] = value;
  t->len++;
  t->last_count = 1;
}

static void ring_push(struct drift_provider *v, size_t window, uint64_t seq, size_t slot,
                      int vote) {
  struct drift_vote *e;
  if (v->alarmed) {
    if (v->after_alarm >= window / 2)
      return; /* frozen around the alarm: the change is in there */
    v->after_alarm++;
  }
  if (v->ring_len < window) {
    e = &v->ring[(v->ring_head + v->ring_len) % window];
    v->ring_len++;
  } else {
    e = &v->ring[v->ring_head];
    v->ring_head = (v->ring_head + 1) % window;
  }
  e->seq = seq;
  e->domain = (uint32_t)slot;
  e->vote = (uint8_t)vote;
}

void qm_drift_observe(struct qm_drift *d, uint64_t sequence, size_t domain_idx,
                      const int8_t *votes, int quorum_success) {
  size_t slot = domain_idx < d->nslots - 1 ? domain_idx : d->nslots - 1;
  double r = rate(d, slot); /* the same reference for every provider of this request */

  (void)quorum_success;
  for (size_t i = 0; i < d->nproviders; i++) {
    struct drift_provider *v = &d->prov[i];
    int vote = votes[i];
    double prev;

    if (vote != 0 && vote != 1)
      continue;
    prev = v->stat;
    v->stat += llr(r, vote);
    if (v->stat <= 0.0)
      v->stat = 0.0;
    if (v->stat > 0.0 && (prev == 0.0 || !v->seen))
      v->exc_start = sequence;
    v->seen = 1;
    if (!v->alarmed) { /* a suspected provider no longer teaches the others */
      d->pool_ones[slot] += (uint64_t)vote;
      d->pool_n[slot]++;
    }
    if (v->stat > v->peak)
      v->peak = v->stat;
    if (!v->alarmed && v->stat > d->p.threshold) {
      v->alarmed = 1;
      v->alarm_at = sequence;
    }
    ring_push(v, d->p.window, sequence, slot, vote);
    trace_push(&v->trace, sequence, v->stat);
  }
}

/* locate: the change in |v|'s ring that maximises the posterior mass within +-tolerance.
 * With a flat prior over the ring's entries, the posterior of "the change is at entry k" is
 * proportional to exp(sum of the llr of entries k..end). Two passes, no scratch memory. */
static uint64_t locate(const struct qm_drift *d, const struct drift_provider *v) {
  size_t n = v->ring_len, w = d->p.window;
  double total = 0.0, prefix = 0.0, top = -HUGE_VAL;
  double mass = 0.0, best_mass = -1.0, pre_lo = 0.0, pre_hi = 0.0;
  size_t lo = 0, hi = 0;
  uint64_t tol = d->p.tolerance, best = 0;

  if (n == 0)
    return 0;
  for (size_t k = 0; k < n; k++) {
    const struct drift_vote *e = &v->ring[(v->ring_head + k) % w];
    total += llr(rate(d, e->domain), e->vote);
  }
  /* log weight of entry k = total - (sum of entries before k) */
  for (size_t k = 0; k < n; k++) {
    const struct drift_vote *e = &v->ring[(v->ring_head + k) % w];
    if (total - prefix > top)
      top = total - prefix;
    prefix += llr(rate(d, e->domain), e->vote);
  }
  /* Window [lo, hi) of entries with |seq - seq_c| <= tol, for each candidate c. pre_lo and
   * pre_hi are the llr sums of the entries before lo and before hi. */
  for (size_t c = 0; c < n; c++) {
    uint64_t sc = v->ring[(v->ring_head + c) % w].seq;
    while (hi < n) {
      const struct drift_vote *e = &v->ring[(v->ring_head + hi) % w];
      if (e->seq > sc + tol)
        break;
      mass += exp(total - pre_hi - top);
      pre_hi += llr(rate(d, e->domain), e->vote);
      hi++;
    }
    while (lo < hi) {
      const struct drift_vote *e = &v->ring[(v->ring_head + lo) % w];
      if (e->seq + tol >= sc)
        break;
      mass -= exp(total - pre_lo - top);
      pre_lo += llr(rate(d, e->domain), e->vote);
      lo++;
    }
    if (mass > best_mass) {
      best_mass = mass;
      best = sc;
    }
  }
  return best;
}

void qm_drift_report(const struct qm_drift *d, size_t provider, struct qm_drift_report *out) {
  const struct drift_provider *v;

  memset(out, 0, sizeof *out);
  if (!d || provider >= d->nproviders)
    return;
  v = &d->prov[provider];
  out->suspected = v->alarmed;
  out->alarm_at = v->alarmed ? v->alarm_at : 0;
  out->change_at = v->alarmed ? locate(d, v) : v->exc_start;
  out->statistic = v->stat;
  out->threshold = d->p.threshold;
  out->peak = v->peak;
}

size_t qm_drift_trace(const struct qm_drift *d, size_t provider, const uint64_t **seqs,
                      const double **values) {
  if (!d || provider >= d->nproviders) {
    *seqs = NULL;
    *values = NULL;
    return 0;
  }
  *seqs = d->prov[provider].trace.seqs;
  *values = d->prov[provider].trace.values;
  return d->prov[provider].trace.len;
}
