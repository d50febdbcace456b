/* auditor_state.c: the quorum tables, the audit log, the drift detector, and what the
 * auditor reports of them. */
#include "auditor_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drift.h"
#include "hash.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "reorder.h"
#include "rpc.h"

#define QM_PENDING_MAX (1u << 16)
#define QM_RETAIN_MAX (1u << 16)
#define QM_REORDER_WINDOW 4096

struct qm_auditor_state {
  const struct qm_topology *topo;
  struct qm_key *const *keys;
  struct qm_root_cache *roots;
  struct qm_hist *latency; /* first vote -> decision */
  const char **domains;
  struct qm_quorum *quorum;
  struct qm_audit_log *log;
  uint64_t replayed;
  struct qm_drift *drift;
  struct qm_reorder *reorder;
  struct qm_decision_times times; /* live decisions only: a replayed one has no real time */
  int replaying;
  const uint64_t *malformed, *unknown_signer, *bad_signature, *signer_mismatch, *refused_full;
};

static void to_drift(void *arg, uint64_t sequence, size_t domain, const int8_t *votes, int success) {
  struct qm_auditor_state *s = arg;
  qm_drift_observe(s->drift, sequence, domain, votes, success);
}

static void on_decision(void *arg, const struct qm_decision *d) {
  struct qm_auditor_state *s = arg;
  if (s->latency) qm_hist_observe_ns(s->latency, d->latency_ns);
  if (!s->replaying) qm_decision_times_record(&s->times, d->sequence, qm_now_ns());
  qm_reorder_push(s->reorder, d->sequence, d->domain, d->votes, d->success);
}

/* replay_record: a record of our own log goes through the same gate as a live Report. */
static int replay_record(void *arg, const uint8_t *rec, size_t len, uint64_t index, char *why, size_t cap) {
  (void)index;
  struct qm_auditor_state *s = arg;
  struct qm_vote v;
  if (qm_report_check(rec, len, s->topo, s->keys, s->roots, &v, why, cap) != QM_REPORT_OK) return -1;
  int rc = qm_quorum_vote(s->quorum, v.repr, v.sequence, v.domain, v.provider, v.initiated, v.decided_ns,
                          qm_mono_ns());
  if (rc < 0) {
    snprintf(why, cap, "cannot replay: too many pending requests");
    return -1;
  }
  s->replayed++;
  return 0;
}

int qm_auditor_state_new(const struct qm_topology *topo, struct qm_key *const *keys, const char *audit_log,
                         enum qm_fsync_policy fsync, struct qm_auditor_state **out, struct qm_err *err) {
  struct qm_auditor_state *s = calloc(1, sizeof *s);
  if (!s) return qm_err_set(err, -ENOMEM, "out of memory");
  s->topo = topo;
  s->keys = keys;
  s->domains = calloc(topo->ndomains + 1, sizeof *s->domains);
  s->roots = calloc(1, sizeof *s->roots);
  int rc = s->domains && s->roots ? 0 : qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < topo->ndomains; i++) s->domains[i] = topo->domains[i].name;
  struct qm_quorum_params p = {
      .nproviders = topo->nproviders,
      .k = topo->quorum_threshold,
      .deadline_ns = (int64_t)topo->deadline_ms * 1000000,
      .ndomains = topo->ndomains,
      .domains = s->domains,
      .pending_max = QM_PENDING_MAX,
      .retain_max = QM_RETAIN_MAX,
  };
  struct qm_drift_params dp;
  qm_drift_params_default(&dp);
  if (!rc && qm_quorum_new(&p, &s->quorum))
    rc = qm_err_set(err, -ENOMEM, "cannot create the quorum tables (%zu providers, k=%u)", topo->nproviders,
                    topo->quorum_threshold);
  if (!rc && qm_drift_new(topo->nproviders, topo->ndomains, &dp, &s->drift))
    rc = qm_err_set(err, -ENOMEM, "cannot create the drift detector");
  if (!rc && qm_reorder_new(topo->nproviders, QM_REORDER_WINDOW, to_drift, s, &s->reorder))
    rc = qm_err_set(err, -ENOMEM, "cannot create the reorder buffer");
  if (!rc) qm_quorum_on_decision(s->quorum, on_decision, s);
  if (!rc && audit_log) {
    struct qm_audit_scan scan;
    s->replaying = 1;
    rc = qm_audit_log_open(audit_log, fsync, replay_record, s, &s->log, &scan, err);
    s->replaying = 0;
  }
  if (rc) {
    qm_auditor_state_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void qm_auditor_state_free(struct qm_auditor_state *s) {
  if (!s) return;
  qm_audit_log_close(s->log);
  qm_reorder_free(s->reorder);
  qm_drift_free(s->drift);
  qm_quorum_free(s->quorum);
  qm_decision_times_free(&s->times);
  free(s->domains);
  free(s->roots);
  free(s);
}

void qm_auditor_state_sync(struct qm_auditor_state *s) { qm_audit_log_sync(s->log); }
void qm_auditor_state_set_latency(struct qm_auditor_state *s, struct qm_hist *h) { s->latency = h; }
uint64_t qm_auditor_state_sync_errors(const struct qm_auditor_state *s) { return qm_audit_log_sync_errors(s->log); }

const struct qm_decision_times *qm_auditor_state_times(const struct qm_auditor_state *s) { return &s->times; }

int64_t qm_auditor_state_pending(const struct qm_auditor_state *s) {
  struct qm_quorum_stats st;
  qm_quorum_stats(s->quorum, &st);
  return (int64_t)st.pending;
}
int64_t qm_auditor_state_reorder_waiting(const struct qm_auditor_state *s) {
  return (int64_t)qm_reorder_waiting(s->reorder);
}
uint64_t qm_auditor_state_replayed(const struct qm_auditor_state *s) { return s->replayed; }

void qm_auditor_state_counters(struct qm_auditor_state *s, const uint64_t *malformed,
                               const uint64_t *unknown_signer, const uint64_t *bad_signature,
                               const uint64_t *signer_mismatch, const uint64_t *refused_full) {
  s->malformed = malformed;
  s->unknown_signer = unknown_signer;
  s->bad_signature = bad_signature;
  s->signer_mismatch = signer_mismatch;
  s->refused_full = refused_full;
}

int qm_auditor_state_vote(struct qm_auditor_state *s, const uint8_t *raw, size_t raw_len,
                          const struct qm_vote *v) {
  struct qm_request_view view;
  if (s->log) {
    /* Log first, then count: an accepted vote is in the log before the provider hears so. */
    int known = qm_quorum_lookup(s->quorum, v->repr, &view) == 0;
    int fresh = !known || (view.state == QM_REQ_PENDING && view.votes[v->provider] < 0);
    if (fresh && qm_audit_log_append(s->log, raw, raw_len)) return -EIO;
  }
  return qm_quorum_vote(s->quorum, v->repr, v->sequence, v->domain, v->provider, v->initiated, v->decided_ns,
                        qm_mono_ns());
}

/* fresh_vote: would the books take this vote now (a new request, or a pending one this
 * provider has not voted on)? Only such votes go to the log. */
static int fresh_vote(const struct qm_auditor_state *s, const struct qm_vote *v) {
  struct qm_request_view view;
  return qm_quorum_lookup(s->quorum, v->repr, &view) != 0 ||
         (view.state == QM_REQ_PENDING && view.votes[v->provider] < 0);
}

void qm_auditor_state_vote_many(struct qm_auditor_state *s, const struct qm_vote *v, const uint8_t *const *raw,
                                const size_t *raw_len, size_t n, int *results) {
  int logged_ok = 1;
  if (s->log && n) {
    /* Log first, then count: the batch's new votes go to the log in one write. */
    const uint8_t **recs = malloc(n * sizeof *recs);
    size_t *lens = malloc(n * sizeof *lens);
    size_t fresh = 0;
    for (size_t i = 0; recs && lens && i < n; i++) {
      if (fresh_vote(s, &v[i])) {
        recs[fresh] = raw[i];
        lens[fresh++] = raw_len[i];
      }
    }
    logged_ok = recs && lens && qm_audit_log_append_many(s->log, recs, lens, fresh) == 0;
    free(recs);
    free(lens);
  }
  for (size_t i = 0; i < n; i++) {
    /* Once the log took the batch, every vote is counted; otherwise the fresh ones are not
     * taken (not in the log), and only the others are answered. */
    if (!logged_ok && fresh_vote(s, &v[i])) results[i] = -EIO;
    else
      results[i] = qm_quorum_vote(s->quorum, v[i].repr, v[i].sequence, v[i].domain, v[i].provider, v[i].initiated,
                                  v[i].decided_ns, qm_mono_ns());
  }
}

void qm_auditor_state_expire(struct qm_auditor_state *s) { qm_quorum_expire(s->quorum, qm_mono_ns()); }

static double rate_of(const struct qm_quorum_provider_stats *p) {
  return p->votes ? (double)p->disagreements / (double)p->votes : 0.0;
}

static uint64_t value_of(const uint64_t *counter) { return counter ? *counter : 0; }

/* settle_drift: once nothing is pending the run is over: hand the detector what waits. */
static void settle_drift(struct qm_auditor_state *s, const struct qm_quorum_stats *st) {
  if (st->pending == 0) qm_reorder_flush(s->reorder);
}

uint8_t *qm_auditor_state_summary(struct qm_auditor_state *s, size_t *len) {
  const struct qm_topology *t = s->topo;
  size_t np = t->nproviders, nd = t->ndomains;
  struct qm_quorum_stats st;
  qm_quorum_stats(s->quorum, &st);
  settle_drift(s, &st);
  Qmesh__V1__Summary out = QMESH__V1__SUMMARY__INIT;
  Qmesh__V1__ProviderSummary *ps = calloc(np, sizeof *ps);
  Qmesh__V1__ProviderSummary **pp = calloc(np, sizeof *pp);
  Qmesh__V1__DomainCount *dc = calloc(np * (nd + 1), sizeof *dc);
  Qmesh__V1__DomainCount **dp = calloc(np * (nd + 1), sizeof *dp);
  size_t *order = calloc(np, sizeof *order);
  uint8_t *buf = NULL;
  if (!ps || !pp || !dc || !dp || !order) goto out;
  /* Worst disagreement first; a stable sort keeps topology order among equals, as the
   * reference's sorted(..., reverse=True) does. */
  for (size_t i = 0; i < np; i++) {
    size_t j = i;
    double r = rate_of(qm_quorum_provider(s->quorum, i));
    while (j > 0 && rate_of(qm_quorum_provider(s->quorum, order[j - 1])) < r) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  for (size_t k = 0; k < np; k++) {
    size_t i = order[k];
    const struct qm_quorum_provider_stats *q = qm_quorum_provider(s->quorum, i);
    struct qm_drift_report rep;
    qm_drift_report(s->drift, i, &rep);
    qmesh__v1__provider_summary__init(&ps[k]);
    ps[k].id = (char *)t->providers[i].ep.id;
    ps[k].votes = q->votes;
    ps[k].disagreements = q->disagreements;
    ps[k].disagree_rate = rate_of(q);
    ps[k].initiations = q->initiations;
    ps[k].n_initiations_by_domain = nd + 1;
    ps[k].initiations_by_domain = &dp[k * (nd + 1)];
    ps[k].drift_suspected = rep.suspected;
    ps[k].drift_change_at = rep.change_at;
    ps[k].drift_alarm_at = rep.alarm_at;
    ps[k].drift_statistic = rep.statistic;
    ps[k].drift_threshold = rep.threshold;
    ps[k].drift_peak = rep.peak;
    for (size_t d = 0; d <= nd; d++) {
      Qmesh__V1__DomainCount *c = &dc[k * (nd + 1) + d];
      qmesh__v1__domain_count__init(c);
      c->domain = (char *)(d < nd ? t->domains[d].name : "other");
      c->count = q->initiations_by_domain[d];
      dp[k * (nd + 1) + d] = c;
    }
    pp[k] = &ps[k];
  }
  Qmesh__V1__Counter rc[5];
  Qmesh__V1__Counter *rcp[5];
  const char *reason[5] = {"malformed", "unknown_signer", "bad_signature", "signer_mismatch", "refused_full"};
  const uint64_t *val[5] = {s->malformed, s->unknown_signer, s->bad_signature, s->signer_mismatch, s->refused_full};
  uint64_t rejected = 0;
  for (size_t i = 0; i < 5; i++) {
    qmesh__v1__counter__init(&rc[i]);
    rc[i].name = (char *)reason[i];
    rc[i].value = value_of(val[i]);
    rcp[i] = &rc[i];
    if (i < 4) rejected += rc[i].value;
  }
  out.decided = st.decided;
  out.incomplete = st.incomplete;
  out.pending = st.pending;
  out.quorum_successes = st.successes;
  out.quorum_failures = st.failures;
  out.votes_accepted = st.accepted;
  out.votes_rejected = rejected;
  out.votes_duplicate = st.duplicate;
  out.votes_late = st.late;
  out.quorum_threshold = t->quorum_threshold;
  out.providers = (uint32_t)np;
  out.n_by_provider = np;
  out.by_provider = pp;
  out.most_inconsistent = np ? ps[0].id : (char *)"";
  /* The quorum runs on the monotonic clock; the wire carries wall-clock times. */
  int64_t to_unix = qm_now_ns() - qm_mono_ns();
  out.first_vote_unix_nanos = st.first_vote_ns ? st.first_vote_ns + to_unix : 0;
  out.last_decision_unix_nanos = st.last_decision_ns ? st.last_decision_ns + to_unix : 0;
  out.n_rejected_by_reason = 5;
  out.rejected_by_reason = rcp;
  out.unknown_domain_votes = st.unknown_domain;
  out.audit_log_records = s->log ? qm_audit_log_records(s->log) : 0;
  out.drift_skipped = qm_reorder_skipped(s->reorder);
  *len = qmesh__v1__summary__get_packed_size(&out);
  buf = malloc(*len ? *len : 1);
  if (buf) qmesh__v1__summary__pack(&out, buf);
out:
  free(ps);
  free(pp);
  free(dc);
  free(dp);
  free(order);
  return buf;
}

uint8_t *qm_auditor_state_drift(struct qm_auditor_state *s, size_t *len) {
  const struct qm_topology *t = s->topo;
  size_t np = t->nproviders;
  struct qm_quorum_stats st;
  qm_quorum_stats(s->quorum, &st);
  settle_drift(s, &st);
  Qmesh__V1__ProviderTrace *tr = calloc(np, sizeof *tr);
  Qmesh__V1__ProviderTrace **tp = calloc(np, sizeof *tp);
  uint8_t *buf = NULL;
  if (!tr || !tp) goto out;
  for (size_t i = 0; i < np; i++) {
    struct qm_drift_report rep;
    const uint64_t *seqs;
    const double *vals;
    qmesh__v1__provider_trace__init(&tr[i]);
    qm_drift_report(s->drift, i, &rep);
    size_t n = qm_drift_trace(s->drift, i, &seqs, &vals);
    tr[i].id = (char *)t->providers[i].ep.id;
    tr[i].n_sequence = n;
    tr[i].sequence = (uint64_t *)seqs;
    tr[i].n_statistic = n;
    tr[i].statistic = (double *)vals;
    tr[i].suspected = rep.suspected;
    tr[i].change_at = rep.change_at;
    tr[i].alarm_at = rep.alarm_at;
    tr[i].threshold = rep.threshold;
    tr[i].peak = rep.peak;
    tp[i] = &tr[i];
  }
  Qmesh__V1__DriftTrace out = QMESH__V1__DRIFT_TRACE__INIT;
  out.n_providers = np;
  out.providers = tp;
  *len = qmesh__v1__drift_trace__get_packed_size(&out);
  buf = malloc(*len ? *len : 1);
  if (buf) qmesh__v1__drift_trace__pack(&out, buf);
out:
  free(tr);
  free(tp);
  return buf;
}
int qm_auditor_state_lookup(struct qm_auditor_state *s, const uint8_t repr[32], uint8_t **out, size_t *len) {
  struct qm_request_view v;
  if (qm_quorum_lookup(s->quorum, repr, &v)) return -ENOENT;
  const struct qm_topology *t = s->topo;
  size_t np = t->nproviders;
  Qmesh__V1__Vote *votes = calloc(np, sizeof *votes);
  Qmesh__V1__Vote **vp = calloc(np, sizeof *vp);
  char hex[65];
  int rc = -ENOMEM;
  if (!votes || !vp) goto out;
  qm_hex(repr, 32, hex);
  Qmesh__V1__LookupReply r = QMESH__V1__LOOKUP_REPLY__INIT;
  r.request_repr_hex = hex;
  r.sequence = v.sequence;
  r.domain = (char *)(v.domain < t->ndomains ? t->domains[v.domain].name : "other");
  r.state = (char *)(v.state == QM_REQ_PENDING ? "pending" : v.state == QM_REQ_DECIDED ? "decided" : "incomplete");
  r.quorum_success = v.state != QM_REQ_PENDING && v.success;
  size_t n = 0;
  for (size_t i = 0; i < np; i++) {
    if (v.votes[i] < 0) continue;
    qmesh__v1__vote__init(&votes[n]);
    votes[n].provider_id = (char *)t->providers[i].ep.id;
    votes[n].initiated = v.votes[i] == 1;
    votes[n].verified = 1; /* only verified votes are recorded */
    votes[n].decided_unix_nanos = v.vote_ns[i];
    r.initiated_votes += v.votes[i] == 1;
    vp[n] = &votes[n];
    n++;
  }
  r.n_votes = n;
  r.votes = vp;
  *len = qmesh__v1__lookup_reply__get_packed_size(&r);
  *out = malloc(*len ? *len : 1);
  if (*out) {
    qmesh__v1__lookup_reply__pack(&r, *out);
    rc = 0;
  }
out:
  free(votes);
  free(vp);
  return rc;
}
