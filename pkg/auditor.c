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
#include "report_wire.h"
#include "roles.h"
#include "sign.h"

#define QM_AUDITOR_TICK_MS 20

/* What one ReportBatch needs per vote, kept between calls: the loop thread serves one call at
 * a time, and batches are alike in size. */
struct batch_scratch {
  size_t cap;
  struct qm_signed_view *views;
  struct qm_vote *votes;     /* the votes that passed the gate, in order */
  const uint8_t **raw;       /* and their own bytes, for the log */
  size_t *raw_len;
  int *status, *rcs, *result; /* per vote: gRPC status, the books' answer, ReportReply result */
  char (*why)[160];
  uint8_t *reply;
  size_t reply_cap;
};

struct auditor {
  struct qm_role *role;
  const struct qm_topology *topo;
  struct qm_key **keys; /* public keys, per provider */
  const char **provider_ids;
  struct qm_root_cache roots; /* batch roots verified already */
  struct qm_auditor_state *state;
  struct batch_scratch scratch;
  uint64_t *rejected_malformed, *rejected_unknown_signer, *rejected_bad_signature,
      *rejected_signer_mismatch, *refused_full, *refused_unauthorized, *accepted, *duplicate, *late, *log_failed, *replayed;
};

/* check_vote: one vote through the gate: signature (or batch root), attribution, size, and
 * with TLS the caller's identity. Returns a gRPC status; |why| says what was refused. */
static int check_vote(struct auditor *a, const struct qm_signed_view *so, const char *peer, struct qm_vote *v,
                      char *why, size_t cap) {
  switch (qm_report_check_view(so, a->topo, a->keys, &a->roots, v, why, cap)) {
    case QM_REPORT_OK: break;
    case QM_REPORT_MALFORMED: (*a->rejected_malformed)++; return QM_STATUS_INVALID_ARGUMENT;
    case QM_REPORT_UNKNOWN_SIGNER: (*a->rejected_unknown_signer)++; return QM_STATUS_UNAUTHENTICATED;
    case QM_REPORT_BAD_SIGNATURE: (*a->rejected_bad_signature)++; return QM_STATUS_UNAUTHENTICATED;
    case QM_REPORT_SIGNER_MISMATCH: (*a->rejected_signer_mismatch)++; return QM_STATUS_PERMISSION_DENIED;
  }
  if (so->raw.n > QM_AUDIT_RECORD_MAX) {
    /* No genuine vote is that large: refuse it for good rather than as a log failure. */
    (*a->rejected_malformed)++;
    snprintf(why, cap, "a vote of %zu bytes exceeds %d", so->raw.n, QM_AUDIT_RECORD_MAX);
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
  struct qm_signed_view so;
  if (qm_wire_signed(req, len, &so)) {
    (*a->rejected_malformed)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SignedOutcome (%zu bytes)", len);
    return;
  }
  int result = 0;
  struct qm_vote v;
  int status = check_vote(a, &so, peer, &v, why, sizeof why);
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

static void scratch_free(struct batch_scratch *s) {
  free(s->views);
  free(s->votes);
  free(s->raw);
  free(s->raw_len);
  free(s->status);
  free(s->rcs);
  free(s->result);
  free(s->why);
  free(s->reply);
  memset(s, 0, sizeof *s);
}

/* scratch_fit: room for |n| votes; 0 or -ENOMEM (then empty). */
static int scratch_fit(struct batch_scratch *s, size_t n) {
  if (n <= s->cap) return 0;
  size_t cap = s->cap ? s->cap : 64;
  while (cap < n) cap *= 2;
  scratch_free(s);
  s->views = malloc(cap * sizeof *s->views);
  s->votes = malloc(cap * sizeof *s->votes);
  s->raw = malloc(cap * sizeof *s->raw);
  s->raw_len = malloc(cap * sizeof *s->raw_len);
  s->status = malloc(cap * sizeof *s->status);
  s->rcs = malloc(cap * sizeof *s->rcs);
  s->result = malloc(cap * sizeof *s->result);
  s->why = malloc(cap * sizeof *s->why);
  if (!s->views || !s->votes || !s->raw || !s->raw_len || !s->status || !s->rcs || !s->result || !s->why) {
    scratch_free(s);
    return -ENOMEM;
  }
  s->cap = cap;
  return 0;
}

/* reply_batch: one ReportReply per vote, in order, encoded straight into the scratch. */
static void reply_batch(struct auditor *a, struct qm_call *call, size_t n) {
  struct batch_scratch *s = &a->scratch;
  size_t len = 0;
  for (size_t k = 0, i = 0; i < n; i++) {
    s->result[i] = 0;
    if (s->status[i] == QM_STATUS_OK) s->status[i] = booked(a, s->rcs[k++], &s->result[i], s->why[i], sizeof s->why[i]);
    if (s->status[i] != QM_STATUS_OK) s->result[i] = QMESH__V1__REPORT_REPLY__RESULT__REJECTED;
    len += qm_wire_batch_reply_len(s->result[i], s->status[i] ? s->why[i] : NULL, (uint32_t)s->status[i]);
  }
  if (len > s->reply_cap || !s->reply) {
    free(s->reply);
    s->reply_cap = len ? len : 1;
    s->reply = malloc(s->reply_cap);
    if (!s->reply) {
      s->reply_cap = 0;
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
  }
  uint8_t *at = s->reply;
  for (size_t i = 0; i < n; i++)
    at = qm_wire_batch_reply_put(at, s->result[i], s->status[i] ? s->why[i] : NULL, (uint32_t)s->status[i]);
  qm_call_reply(call, s->reply, len);
}

/* on_report_batch: many votes, one reply each; a refused vote does not refuse the others.
 * The votes are read in place (each one's own bytes go to the log as received). */
static void on_report_batch(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  struct batch_scratch *s = &a->scratch;
  char peer[QM_ID_MAX] = "";
  if (!peer_ok(a, call, peer, sizeof peer)) return;
  size_t n = 0;
  int rc = qm_wire_batch(req, len, s->views, s->cap, &n);
  if (!rc && n > s->cap) {
    if (scratch_fit(s, n)) {
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    rc = qm_wire_batch(req, len, s->views, s->cap, &n);
  }
  if (rc) {
    (*a->rejected_malformed)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SignedOutcomeBatch (%zu bytes)", len);
    return;
  }
  /* Check every vote first (one root verification per batch), then book the good ones with
   * one log write. */
  size_t nok = 0;
  for (size_t i = 0; i < n; i++) {
    s->status[i] = check_vote(a, &s->views[i], peer, &s->votes[nok], s->why[i], sizeof s->why[i]);
    if (s->status[i] == QM_STATUS_OK) {
      s->raw[nok] = s->views[i].raw.p;
      s->raw_len[nok++] = s->views[i].raw.n;
    }
  }
  qm_auditor_state_vote_many(a->state, s->votes, s->raw, s->raw_len, nok, s->rcs);
  reply_batch(a, call, n);
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

#define QM_DECISION_TIMES_PER_CALL 65536

static void on_decision_times(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct auditor *a = ctx;
  Qmesh__V1__DecisionTimesRequest *in = qmesh__v1__decision_times_request__unpack(NULL, len, req);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed DecisionTimesRequest");
    return;
  }
  if (in->count > QM_DECISION_TIMES_PER_CALL || in->first_sequence > UINT64_MAX - in->count) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "count %u is over %d per call (or runs past 2^64)", in->count,
                 QM_DECISION_TIMES_PER_CALL);
    qmesh__v1__decision_times_request__free_unpacked(in, NULL);
    return;
  }
  const struct qm_decision_times *t = qm_auditor_state_times(a->state);
  int64_t *ns = malloc((in->count ? in->count : 1) * sizeof *ns);
  Qmesh__V1__DecisionTimes out = QMESH__V1__DECISION_TIMES__INIT;
  uint8_t *buf = NULL;
  if (ns) {
    for (uint32_t i = 0; i < in->count; i++) ns[i] = qm_decision_times_get(t, in->first_sequence + i);
    out.n_decided_unix_nanos = in->count;
    out.decided_unix_nanos = ns;
    size_t n = qmesh__v1__decision_times__get_packed_size(&out);
    if ((buf = malloc(n ? n : 1))) {
      qmesh__v1__decision_times__pack(&out, buf);
      qm_call_reply(call, buf, n);
    }
  }
  if (!buf) qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  free(buf);
  free(ns);
  qmesh__v1__decision_times_request__free_unpacked(in, NULL);
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
  scratch_free(&a->scratch);
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
static int64_t gauge_sync_errors(void *arg) {
  return (int64_t)qm_auditor_state_sync_errors(((struct auditor *)arg)->state);
}

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
  if ((!a->provider_ids || scratch_fit(&a->scratch, 64)) && !rc) rc = qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; a->provider_ids && i < a->topo->nproviders; i++) a->provider_ids[i] = a->topo->providers[i].ep.id;
  a->log_failed = qm_role_counter(r, "audit_log_failed");
  a->replayed = qm_role_counter(r, "audit_log_replayed");
  if (!rc) *a->replayed = qm_auditor_state_replayed(a->state);
  if (!rc) {
    qm_auditor_state_set_latency(a->state, qm_role_histogram(r, "decision_latency_seconds"));
    qm_role_add_gauge(r, "requests_pending", gauge_pending, a);
    qm_role_add_gauge(r, "drift_reorder_waiting", gauge_reorder, a);
    qm_role_add_gauge(r, "audit_log_sync_errors", gauge_sync_errors, a);
  }
  if (!rc) qm_auditor_state_counters(a->state, a->rejected_malformed, a->rejected_unknown_signer,
                                     a->rejected_bad_signature, a->rejected_signer_mismatch, a->refused_full);
  struct qm_server *srv = qm_role_server(r);
  struct qm_method_spec report = {.path = "/qmesh.v1.Auditor/Report", .unary = on_report, .ctx = a};
  struct qm_method_spec report_batch = {.path = "/qmesh.v1.Auditor/ReportBatch", .unary = on_report_batch, .ctx = a};
  struct qm_method_spec summary = {.path = "/qmesh.v1.Auditor/Summary", .unary = on_summary, .ctx = a};
  struct qm_method_spec lookup = {.path = "/qmesh.v1.Auditor/Lookup", .unary = on_lookup, .ctx = a};
  struct qm_method_spec times = {.path = "/qmesh.v1.Auditor/DecisionTimes", .unary = on_decision_times, .ctx = a};
  struct qm_method_spec drift = {.path = "/qmesh.v1.Auditor/DriftTrace", .unary = on_drift, .ctx = a};
  if (!rc && (qm_server_add_method(srv, &report) || qm_server_add_method(srv, &report_batch) ||
              qm_server_add_method(srv, &summary) || qm_server_add_method(srv, &lookup) ||
              qm_server_add_method(srv, &times) || qm_server_add_method(srv, &drift) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Auditor/Stats") || qm_server_add_mux(srv, "/qmesh.v1.Auditor/Mux")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Auditor service");
  if (rc) {
    teardown(a);
    return rc;
  }
  *state = a;
  return 0;
}

const struct qm_role_ops qm_auditor_ops = {.role = "auditor", .setup = setup, .teardown = teardown};
