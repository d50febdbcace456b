/* drift.h: online change-point detection over each provider's votes, at the auditor.
 *
 * The auditor is observational: it sees, per decided request, each provider's initiated bit
 * and the request's domain. An honest provider votes initiated with a fixed per-domain rate p
 * (uniform scores against the domain threshold, mixed over the requests' hidden contexts); a
 * provider that inverts its decision from some index on votes with rate 1 - p from there. For
 * every provider the detector runs a CUSUM of the log-likelihood ratio "inverted" against
 * "as before", with p learned per domain from the pooled history of the providers not
 * suspected so far (its own votes and its peers'). Once suspected, a provider's change is
 * located by the posterior over the votes kept around its alarm. The method, the knobs and
 * the evaluation are in docs/DRIFT.md.
 *
 * Memory is bounded: per provider a fixed ring of recent votes (to locate the change) and a
 * downsampled trace of at most QM_DRIFT_TRACE_MAX points; nothing grows per request.
 * Everything is deterministic: the same observations give the same reports and traces. */
#ifndef QM_DRIFT_H
#define QM_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#define QM_DRIFT_TRACE_MAX 4096 /* points kept per provider by qm_drift_trace */
#define QM_DRIFT_WINDOW_MAX 65536 /* largest accepted |window| */

struct qm_drift;

struct qm_drift_params {
  /* Alarm when a provider's CUSUM statistic (nats) exceeds this. Default 12: about 4 false
   * alarms in 10,000 honest 2000-request runs, median delay about 145 requests for the
   * default topology's inversion (docs/DRIFT.md). */
  double threshold;
  /* Weight, in votes, of the neutral rate 0.5 that every domain's learned rate starts
   * from; it keeps the first requests from counting as evidence. Default 30. */
  double prior_votes;
  /* Learned rates are clamped to [rate_floor, 1 - rate_floor]. Default 0.02. */
  double rate_floor;
  /* Votes kept per provider to locate the change once it is suspected (half before the
   * alarm, half after). Default 1024; at least 16, at most QM_DRIFT_WINDOW_MAX. */
  size_t window;
  /* The located change maximises the posterior probability of lying within this many
   * requests of the true one. Default 60; 0 gives the maximum-likelihood index. */
  uint64_t tolerance;
};

/* qm_drift_params_default: fills |p| with the defaults above. */
void qm_drift_params_default(struct qm_drift_params *p);

/* qm_drift_new: a detector for |nproviders| providers (at least 1) and |ndomains| domains;
 * votes in the extra domain index |ndomains| ("unknown domain") are pooled in a domain of
 * their own. |p| is copied; NULL means the defaults. Returns 0 and the detector in |*out|
 * (free with qm_drift_free), -EINVAL for zero providers or a parameter out of range, or
 * -ENOMEM; on failure |*out| is untouched. */
int qm_drift_new(size_t nproviders, size_t ndomains, const struct qm_drift_params *p,
                 struct qm_drift **out);

/* qm_drift_free: frees |d|; NULL-safe. */
void qm_drift_free(struct qm_drift *d);

/* qm_drift_observe: one decided request, in ascending |sequence| order. |votes| (borrowed,
 * nproviders entries) holds 1 (initiated), 0 (not) or -1 (missing: that provider is not
 * updated). |domain_idx| is in [0, ndomains]; larger values count as ndomains.
 * |quorum_success| is accepted for the auditor's convenience but not used: the outcome is a
 * function of the votes and carries no more information about any one provider. */
void qm_drift_observe(struct qm_drift *d, uint64_t sequence, size_t domain_idx,
                      const int8_t *votes, int quorum_success);

/* One provider's verdict.
 * suspected: the statistic has exceeded the threshold at least once (sticky).
 * alarm_at:  the sequence of the observation that first exceeded it (0 when not suspected).
 * change_at: suspected: the located change (the first sequence believed to be inverted);
 *            otherwise the start of the statistic's current excursion above zero, i.e. where
 *            a change would be placed if it were confirmed later (0 before any vote).
 * statistic: the CUSUM statistic now; threshold: the alarm level; peak: its maximum so far. */
struct qm_drift_report {
  int suspected;
  uint64_t alarm_at;
  uint64_t change_at;
  double statistic;
  double threshold;
  double peak;
};

/* qm_drift_report: fills |out| for |provider| (< nproviders; otherwise |out| is zeroed). */
void qm_drift_report(const struct qm_drift *d, size_t provider, struct qm_drift_report *out);

/* qm_drift_trace: the statistic after each observation of |provider|, downsampled to at most
 * QM_DRIFT_TRACE_MAX points (each point is the maximum over a run of 2^k observations and
 * carries the sequence of the run's last one). Sets |*seqs| and |*values| to arrays owned by
 * |d|, valid until the next qm_drift_observe or qm_drift_free, and returns their length (0
 * for an unknown provider, with both set to NULL). */
size_t qm_drift_trace(const struct qm_drift *d, size_t provider, const uint64_t **seqs,
                      const double **values);

/* qm_drift_nproviders: the number of providers |d| was made for. */
size_t qm_drift_nproviders(const struct qm_drift *d);

#endif
