/* auditor.c: verifies each SignedOutcome with the provider's public key, aggregates the
 * k-of-n quorum and scores disagreement. Observational: it opens no connection and exposes
 * only reads (Summary, Lookup, Stats) besides taking votes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditor_state.h"
#include "hash.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "report_check.h"
#include "roles.h"
#include "sign.h"

#define QM_AUDITOR_TICK_MS 20

struct auditor {
  struct qm_role *role;
  const struct qm_topology *topo;
  struct qm_key **keys; /* public keys, per provider */
  const char **provider_ids;
  struct qm_root_cache roots; /* batch roots verified already */
  struct qm_auditor_state *state;
  uint64_t *rejected_malformed, *rejected_unknown_signer, *rejected_bad_signature,
      *rejected_signer_mismatch, *refused_full, *refused_unauthorized, *accepted, *duplicate, *late, *log_failed, *replayed;
};

/* check_vote: one vote through the gate: signature (or batch root), attribution, size, and
 * with TLS the caller's identity. Returns a gRPC status; |why| says what was refused. */
static int check_vote(struct auditor *a, const Qmesh__V1__SignedOutcome *so, size_t raw_len, const char *peer,
                      struct qm_vote *v, char *why, size_t cap) {
  switch (qm_report_check_decoded(so, a->topo, a->keys, &a->roots, v, why, cap)) {
    case QM_REPORT_OK: break;
    case QM_REPORT_MALFORMED: (*a->rejected_malformed)++; return QM_STATUS_INVALID_ARGUMENT;
    case QM_REPORT_UNKNOWN_SIGNER: (*a->rejected_unknown_signer)++; return QM_STATUS_UNAUTHENTICATED;
    case QM_REPORT_BAD_SIGNATURE: (*a->rejected_bad_signature)++; return QM_STATUS_UNAUTHENTICATED;
    case QM_REPORT_SIGNER_MISMATCH: (*a->rejected_signer_mismatch)++; return QM_STATUS_PERMISSION_DENIED;
  }
  if (raw_len > QM_AUDIT_RECORD_MAX) {
    /* No genuine vote is that large: refuse it for good rather than as a log failure. */
    (*a->rejected_malformed)++;
    snprintf(why, cap, "a vote of %zu bytes exceeds %d", raw_len, QM_AUDIT_RECORD_MAX);
    return QM_STATUS_INVALID_ARGUMENT;
  }
  if (qm_rpc_tls_enabled() && strcmp(peer, a->topo->providers[v->provider].ep.id) != 0) {
    /* Signed by one provider, sent by another: a provider speaks only for itself. */
    (*a->refused_unauthorized)++;
    snprintf(why, cap, "'%s' may not report the outcome signed by %s", peer, a->topo->providers[v->provider].ep.id);
    return QM_STATUS_PERMISSION_DENIED;
  }
  return QM_STATUS_OK;
}

/* booked: what the books said of a checked vote (a qm_vote_result or a negative code), as a
 * gRPC status and a ReportReply result, counted. */
static int booked(struct auditor *a, int rc, int *result, char *why, size_t cap) {
  if (rc == -EIO) {
    /* Not in the log, so not taken: the provider offers it again. */
    (*a->log_failed)++;
    snprintf(why, cap, "auditor: cannot append to the audit log");
    return QM_STATUS_UNAVAILABLE;
  }
  if (rc < 0) {
    (*a->refused_full)++;
    snprintf(why, cap, "auditor: too many pending requests");
    return QM_STATUS_RESOURCE_EXHAUSTED;
  }
  if (rc == QM_VOTE_ACCEPTED) (*a->accepted)++;
  else if (rc == QM_VOTE_DUPLICATE) (*a->duplicate)++;
  else (*a->late)++;
  *result = rc == QM_VOTE_ACCEPTED    ? QMESH__V1__REPORT_REPLY__RESULT__ACCEPTED
            : rc == QM_VOTE_DUPLICATE ? QMESH__V1__REPORT_REPLY__RESULT__DUPLICATE
                                      : QMESH__V1__REPORT_REPLY__RESULT__LATE;
  return QM_STATUS_OK;
}

static int peer_ok(struct auditor *a, struct qm_call *call, char *peer, size_t cap) {
  if (qm_role_peer_allowed(call, a->provider_ids, a->topo->nproviders, peer, cap)) return 1;
  (*a->refused_unauthorized)++;
  qm_call_fail(call, QM_STATUS_PERMISSION_DENIED, "the auditor takes votes only from providers, not from '%s'", peer);
  return 0;
}

static void on_report(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  char why[256], peer[QM_ID_MAX] = "";
  if (!peer_ok(a, call, peer, sizeof peer)) return;
  Qmesh__V1__SignedOutcome *so = qmesh__v1__signed_outcome__unpack(NULL, len, req);
  if (!so) {
    (*a->rejected_malformed)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SignedOutcome (%zu bytes)", len);
    return;
  }
  int result = 0;
  struct qm_vote v;
  int status = check_vote(a, so, len, peer, &v, why, sizeof why);
  qmesh__v1__signed_outcome__free_unpacked(so, NULL);
  if (status == QM_STATUS_OK) status = booked(a, qm_auditor_state_vote(a->state, req, len, &v), &result, why, sizeof why);
  if (status != QM_STATUS_OK) {
    qm_call_fail(call, status, "%s", why);
    return;
  }
  Qmesh__V1__ReportReply reply = QMESH__V1__REPORT_REPLY__INIT;
  reply.result = (Qmesh__V1__ReportReply__Result)result;
  uint8_t buf[8];
  qm_call_reply(call, buf, qmesh__v1__report_reply__pack(&reply, buf));
}

/* on_report_batch: many votes, one reply each; a refused vote does not refuse the others. */
static void on_report_batch(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  char peer[QM_ID_MAX] = "";
  if (!peer_ok(a, call, peer, sizeof peer)) return;
  Qmesh__V1__SignedOutcomeBatch *batch = qmesh__v1__signed_outcome_batch__unpack(NULL, len, req);
  if (!batch) {
    (*a->rejected_malformed)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SignedOutcomeBatch (%zu bytes)", len);
    return;
  }
  size_t n = batch->n_votes;
  Qmesh__V1__ReportReply *replies = calloc(n ? n : 1, sizeof *replies);
  Qmesh__V1__ReportReply **rp = calloc(n ? n : 1, sizeof *rp);
  char (*why)[160] = calloc(n ? n : 1, sizeof *why);
  struct qm_vote *votes = calloc(n ? n : 1, sizeof *votes);
  uint8_t **raws = calloc(n ? n : 1, sizeof *raws);
  size_t *raw_lens = calloc(n ? n : 1, sizeof *raw_lens);
  int *status = calloc(n ? n : 1, sizeof *status), *rcs = calloc(n ? n : 1, sizeof *rcs);
  size_t *which = calloc(n ? n : 1, sizeof *which);
  uint8_t *buf = NULL;
  size_t nok = 0;
  if (!replies || !rp || !why || !votes || !raws || !raw_lens || !status || !rcs || !which) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  /* Check every vote first (one root verification per batch), then book the good ones with
   * one log write. */
  for (size_t i = 0; i < n; i++) {
    const Qmesh__V1__SignedOutcome *so = batch->votes[i];
    raw_lens[i] = qmesh__v1__signed_outcome__get_packed_size(so);
    raws[i] = malloc(raw_lens[i] ? raw_lens[i] : 1);
    if (!raws[i]) {
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      goto out;
    }
    qmesh__v1__signed_outcome__pack(so, raws[i]); /* the log keeps each vote on its own */
    status[i] = check_vote(a, so, raw_lens[i], peer, &votes[nok], why[i], sizeof why[i]);
    if (status[i] == QM_STATUS_OK) which[nok++] = i;
  }
  {
    struct qm_vote *ok_votes = votes;
    const uint8_t **ok_raw = calloc(nok ? nok : 1, sizeof *ok_raw);
    size_t *ok_len = calloc(nok ? nok : 1, sizeof *ok_len);
    if (!ok_raw || !ok_len) {
      free(ok_raw);
      free(ok_len);
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      goto out;
    }
    for (size_t k = 0; k < nok; k++) {
      ok_raw[k] = raws[which[k]];
      ok_len[k] = raw_lens[which[k]];
    }
    qm_auditor_state_vote_many(a->state, ok_votes, ok_raw, ok_len, nok, rcs);
    free(ok_raw);
    free(ok_len);
  }
  for (size_t k = 0, i = 0; i < n; i++) {
    qmesh__v1__report_reply__init(&replies[i]);
    int result = 0;
    if (status[i] == QM_STATUS_OK) status[i] = booked(a, rcs[k++], &result, why[i], sizeof why[i]);
    if (status[i] == QM_STATUS_OK) {
      replies[i].result = (Qmesh__V1__ReportReply__Result)result;
    } else {
      replies[i].result = QMESH__V1__REPORT_REPLY__RESULT__REJECTED;
      replies[i].error = why[i];
      replies[i].code = (uint32_t)status[i];
    }
    rp[i] = &replies[i];
  }
  Qmesh__V1__ReportBatchReply out = QMESH__V1__REPORT_BATCH_REPLY__INIT;
  out.n_replies = n;
  out.replies = rp;
  size_t blen = qmesh__v1__report_batch_reply__get_packed_size(&out);
  buf = malloc(blen ? blen : 1);
  if (!buf) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto out;
  }
  qmesh__v1__report_batch_reply__pack(&out, buf);
  qm_call_reply(call, buf, blen);
out:
  free(buf);
  for (size_t i = 0; raws && i < n; i++) free(raws[i]);
  free(raws);
  free(raw_lens);
  free(status);
  free(rcs);
  free(which);
  free(votes);
  free(why);
  free(rp);
  free(replies);
  qmesh__v1__signed_outcome_batch__free_unpacked(batch, NULL);
}

static void reply_packed(struct qm_call *call, uint8_t *buf, size_t len) {
  if (!buf) qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  else qm_call_reply(call, buf, len);
  free(buf);
}

static void on_summary(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  Qmesh__V1__SummaryRequest *in = qmesh__v1__summary_request__unpack(NULL, len, req);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SummaryRequest");
    return;
  }
  qmesh__v1__summary_request__free_unpacked(in, NULL);
  size_t n = 0;
  uint8_t *buf = qm_auditor_state_summary(a->state, &n);
  reply_packed(call, buf, n);
}

static void on_lookup(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  Qmesh__V1__LookupRequest *in = qmesh__v1__lookup_request__unpack(NULL, len, req);
  uint8_t repr[32];
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed LookupRequest");
    return;
  }
  if (qm_unhex(in->request_repr_hex, repr, sizeof repr)) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "request_repr_hex must be 64 hex digits, got '%.80s'",
                 in->request_repr_hex);
  } else {
    size_t n = 0;
    uint8_t *buf = NULL;
    int rc = qm_auditor_state_lookup(a->state, repr, &buf, &n);
    if (rc == -ENOENT)
      qm_call_fail(call, QM_STATUS_NOT_FOUND, "no vote for request %s (never seen, or forgotten after decision)",
                   in->request_repr_hex);
    else
      reply_packed(call, buf, n);
  }
  qmesh__v1__lookup_request__free_unpacked(in, NULL);
}

static void on_drift(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  Qmesh__V1__DriftTraceRequest *in = qmesh__v1__drift_trace_request__unpack(NULL, len, req);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed DriftTraceRequest");
    return;
  }
  qmesh__v1__drift_trace_request__free_unpacked(in, NULL);
  size_t n = 0;
  uint8_t *buf = qm_auditor_state_drift(a->state, &n);
  reply_packed(call, buf, n);
}

static void on_tick(void *arg) {
  struct auditor *a = arg;
  qm_auditor_state_expire(a->state);
  qm_auditor_state_sync(a->state);
}

static void teardown(void *state) {
  struct auditor *a = state;
  if (a->keys)
    for (size_t i = 0; i < a->topo->nproviders; i++) qm_key_free(a->keys[i]);
  free(a->keys);
  free(a->provider_ids);
  qm_auditor_state_free(a->state);
  free(a);
}

static int load_keys(struct auditor *a, struct qm_err *err) {
  const struct qm_topology *t = a->topo;
  a->keys = calloc(t->nproviders, sizeof *a->keys);
  if (!a->keys) return qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; i < t->nproviders; i++) {
    char path[QM_PATH_MAX + QM_ID_MAX + 8];
    if (t->providers[i].public_key[0]) snprintf(path, sizeof path, "%s", t->providers[i].public_key);
    else if (t->keys_dir[0]) snprintf(path, sizeof path, "%s/%s.pub", t->keys_dir, t->providers[i].ep.id);
    else
      return qm_err_set(err, -ENOENT, "%s: no public key for %s (set public_key, keys_dir or --keys)", t->source,
                        t->providers[i].ep.id);
    int rc = qm_key_load_public(path, &a->keys[i], err);
    if (rc) return rc;
  }
  return 0;
}

static int64_t gauge_pending(void *arg) { return qm_auditor_state_pending(((struct auditor *)arg)->state); }
static int64_t gauge_reorder(void *arg) { return qm_auditor_state_reorder_waiting(((struct auditor *)arg)->state); }

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  struct auditor *a = calloc(1, sizeof *a);
  if (!a) return qm_err_set(err, -ENOMEM, "out of memory");
  a->role = r;
  a->topo = qm_role_topology(r);
  int rc = load_keys(a, err);
  enum qm_fsync_policy fsync = QM_FSYNC_BATCH;
  const char *policy = qm_role_options(r)->audit_fsync;
  if (!rc && policy && qm_fsync_policy_parse(policy, &fsync))
    rc = qm_err_set(err, -EINVAL, "--audit-fsync '%s': expected never, batch or always", policy);
  if (!rc) rc = qm_auditor_state_new(a->topo, a->keys, qm_role_options(r)->audit_log, fsync, &a->state, err);
  if (!rc) rc = qm_loop_add_tick(qm_role_loop(r), QM_AUDITOR_TICK_MS, on_tick, a);
  a->accepted = qm_role_counter(r, "votes_accepted");
  a->duplicate = qm_role_counter(r, "votes_duplicate");
  a->late = qm_role_counter(r, "votes_late");
  a->rejected_malformed = qm_role_counter(r, "rejected_malformed");
  a->rejected_unknown_signer = qm_role_counter(r, "rejected_unknown_signer");
  a->rejected_bad_signature = qm_role_counter(r, "rejected_bad_signature");
  a->rejected_signer_mismatch = qm_role_counter(r, "rejected_signer_mismatch");
  a->refused_full = qm_role_counter(r, "refused_full");
  a->refused_unauthorized = qm_role_counter(r, "refused_unauthorized");
  a->provider_ids = calloc(a->topo->nproviders, sizeof *a->provider_ids);
  if (!a->provider_ids && !rc) rc = qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; a->provider_ids && i < a->topo->nproviders; i++) a->provider_ids[i] = a->topo->providers[i].ep.id;
  a->log_failed = qm_role_counter(r, "audit_log_failed");
  a->replayed = qm_role_counter(r, "audit_log_replayed");
  if (!rc) *a->replayed = qm_auditor_state_replayed(a->state);
  if (!rc) {
    qm_auditor_state_set_latency(a->state, qm_role_histogram(r, "decision_latency_seconds"));
    qm_role_add_gauge(r, "requests_pending", gauge_pending, a);
    qm_role_add_gauge(r, "drift_reorder_waiting", gauge_reorder, a);
  }
  if (!rc) qm_auditor_state_counters(a->state, a->rejected_malformed, a->rejected_unknown_signer,
                                     a->rejected_bad_signature, a->rejected_signer_mismatch, a->refused_full);
  struct qm_server *srv = qm_role_server(r);
  struct qm_method_spec report = {.path = "/qmesh.v1.Auditor/Report", .unary = on_report, .ctx = a};
  struct qm_method_spec report_batch = {.path = "/qmesh.v1.Auditor/ReportBatch", .unary = on_report_batch, .ctx = a};
  struct qm_method_spec summary = {.path = "/qmesh.v1.Auditor/Summary", .unary = on_summary, .ctx = a};
  struct qm_method_spec lookup = {.path = "/qmesh.v1.Auditor/Lookup", .unary = on_lookup, .ctx = a};
  struct qm_method_spec drift = {.path = "/qmesh.v1.Auditor/DriftTrace", .unary = on_drift, .ctx = a};
  if (!rc && (qm_server_add_method(srv, &report) || qm_server_add_method(srv, &report_batch) || qm_server_add_method(srv, &summary) ||
              qm_server_add_method(srv, &lookup) || qm_server_add_method(srv, &drift) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Auditor/Stats")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Auditor service");
  if (rc) {
    teardown(a);
    return rc;
  }
  *state = a;
  return 0;
}

const struct qm_role_ops qm_auditor_ops = {.role = "auditor", .setup = setup, .teardown = teardown};
