/* provider.c: the only decision authority: scores each Artifact with its own secret,
 * applies the domain threshold, decides `initiated`, signs the Outcome bytes with its
 * Ed25519 key and reports them to the auditor. Its reply to the hub carries no decision. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_wire.h"
#include "batcher.h"
#include "decision.h"
#include "roles.h"
#include "sign.h"
#include "stream.h"
#include "vote_wire.h"

struct provider {
  struct qm_role *role;
  const struct qm_topology *topo;
  const struct qm_provider *self;
  struct qm_key *key;
  struct qm_scorer *scorer; /* keyed with this provider's score secret once */
  size_t id_len;
  struct qm_channel *auditor;
  struct qm_batcher *batcher; /* votes to the auditor, signed per batch */
  int byzantine;
  int64_t byzantine_at;
  uint64_t *evaluated, *initiated, *reported, *report_failed, *refused_invalid, *refused_full,
      *unknown_domain, *flipped;
  uint64_t *report_retries, *refused_unauthorized, *report_rejected, *batches;
  const char **hub_ids; /* the peers allowed to ask for an evaluation (mutual TLS) */
  uint64_t **initiated_by_domain; /* per topology domain */
  char **counter_names;
};

static void on_tick(void *arg) {
  struct provider *p = arg;
  qm_batcher_tick(p->batcher, qm_loop_stopping(qm_role_loop(p->role)));
}

/* domain_index: the topology's index of |domain| (|len| bytes), or ndomains when unknown. */
static size_t domain_index(const struct qm_topology *t, const char *domain, size_t len) {
  for (size_t i = 0; i < t->ndomains; i++)
    if (strlen(t->domains[i].name) == len && memcmp(t->domains[i].name, domain, len) == 0) return i;
  return t->ndomains;
}

/* The Outcome bytes are built on the stack when they fit (every real one does). */
#define QM_OUTCOME_STACK 512

/* decide: the provider's whole authority over one Artifact: score, threshold, the Byzantine
 * flip, and the Outcome bytes to sign, queued to the batcher with |done(arg)|. Returns a gRPC
 * status (|why| filled when not OK; then |done| never runs). */
static int decide(struct provider *p, const uint8_t *req, size_t len, qm_vote_done_fn done, void *arg, char *why,
                  size_t cap) {
  struct qm_artifact_view a;
  if (qm_artifact_read(req, len, &a)) {
    (*p->refused_invalid)++;
    snprintf(why, cap, "malformed Artifact");
    return QM_STATUS_INVALID_ARGUMENT;
  }
  if (a.repr_len != 32) {
    (*p->refused_invalid)++;
    snprintf(why, cap, "request_repr must be 32 bytes, got %zu", a.repr_len);
    return QM_STATUS_INVALID_ARGUMENT;
  }
  (*p->evaluated)++;
  const struct qm_topology *t = p->topo;
  double score = -1.0; /* OpenSSL failing scores below every threshold, as before */
  qm_scorer_score(p->scorer, a.domain, a.domain_len, a.request_repr, a.context, a.context_len, &score);
  size_t d = domain_index(t, a.domain, a.domain_len);
  if (d == t->ndomains) (*p->unknown_domain)++;
  /* qm_topology_threshold's rule, without needing the domain NUL-terminated */
  double threshold = d < t->ndomains ? t->domains[d].threshold : t->default_threshold;
  int honest = score >= threshold;
  int initiated = qm_decision_initiated(score, threshold, p->byzantine, a.sequence, p->byzantine_at);
  if (initiated != honest) (*p->flipped)++;
  if (initiated) {
    (*p->initiated)++;
    if (d < t->ndomains) (*p->initiated_by_domain[d])++;
  }
  struct qm_outcome_fields o = {.request_repr = a.request_repr,
                                .repr_len = a.repr_len,
                                .provider_id = p->self->ep.id,
                                .provider_id_len = p->id_len,
                                .domain = a.domain,
                                .domain_len = a.domain_len,
                                .initiated = initiated,
                                .sequence = a.sequence,
                                .decided_unix_nanos = qm_now_ns()};
  size_t olen = qm_outcome_wire_len(&o);
  uint8_t stack[QM_OUTCOME_STACK], *outcome = olen <= sizeof stack ? stack : malloc(olen);
  if (!outcome) {
    snprintf(why, cap, "out of memory");
    return QM_STATUS_RESOURCE_EXHAUSTED;
  }
  qm_outcome_wire_put(&o, outcome); /* these bytes are what gets signed */
  int status = QM_STATUS_OK;
  if (qm_batcher_add(p->batcher, outcome, olen, done, arg)) {
    (*p->refused_full)++;
    snprintf(why, cap, "provider %s: too many votes waiting for the auditor", p->self->ep.id);
    status = QM_STATUS_RESOURCE_EXHAUSTED;
  }
  if (outcome != stack) free(outcome);
  return status;
}

static int peer_ok(struct provider *p, struct qm_call *call) {
  char peer[QM_ID_MAX];
  if (qm_role_peer_allowed(call, p->hub_ids, p->topo->nregions, peer, sizeof peer)) return 1;
  (*p->refused_unauthorized)++;
  qm_call_fail(call, QM_STATUS_PERMISSION_DENIED, "provider %s evaluates only for hubs, not for '%s'",
               qm_role_id(p->role), peer);
  return 0;
}

static void unary_done(void *arg, int status, const char *why) {
  if (status == QM_STATUS_OK) qm_call_reply(arg, NULL, 0);
  else qm_call_fail(arg, status, "%s", why);
}

static void on_evaluate(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct provider *p = ctx;
  char why[200];
  if (!peer_ok(p, call)) return;
  int status = decide(p, req, len, unary_done, call, why, sizeof why);
  if (status != QM_STATUS_OK) qm_call_fail(call, status, "%s", why);
}

/* A batch of artifacts from a hub: one reply when every vote has an answer. */
struct eval_batch {
  struct provider *p;
  struct qm_call *call;
  size_t n, remaining;
  struct eval_item {
    struct eval_batch *batch;
    int status;
    char why[160];
  } items[];
};

/* finish_batch: the BatchReply, one ItemStatus per artifact in order, then the call ends. */
static void finish_batch(struct eval_batch *eb) {
  size_t len = 0;
  for (size_t i = 0; i < eb->n; i++)
    len += qm_item_status_wire_len((uint32_t)eb->items[i].status, strlen(eb->items[i].why));
  uint8_t *buf = malloc(len ? len : 1), *p = buf;
  if (buf) {
    for (size_t i = 0; i < eb->n; i++)
      p = qm_item_status_wire_put((uint32_t)eb->items[i].status, eb->items[i].why, strlen(eb->items[i].why), p);
    qm_call_reply(eb->call, buf, len);
  } else {
    qm_call_fail(eb->call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  free(buf);
  free(eb);
}

static void item_done(void *arg, int status, const char *why) {
  struct eval_item *it = arg;
  it->status = status;
  if (status == QM_STATUS_OK) it->why[0] = '\0'; /* the common case: no formatting */
  else if (why != it->why) snprintf(it->why, sizeof it->why, "%s", why);
  if (--it->batch->remaining == 0) finish_batch(it->batch);
}

static void on_evaluate_batch(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct provider *p = ctx;
  if (!peer_ok(p, call)) return;
  size_t n = 0;
  if (qm_artifact_batch_count(req, len, &n)) {
    (*p->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed ArtifactBatch");
    return;
  }
  struct eval_batch *eb = calloc(1, sizeof *eb + n * sizeof eb->items[0]);
  if (!eb) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  eb->p = p;
  eb->call = call;
  eb->n = n;
  eb->remaining = n + 1;       /* +1: held until every item was started */
  qm_batcher_hold(p->batcher); /* the whole call's votes share one signature */
  const uint8_t *at = req, *item;
  size_t item_len, i = 0;
  for (; i < n && qm_artifact_batch_next(&at, req + len, &item, &item_len); i++) {
    struct eval_item *it = &eb->items[i];
    it->batch = eb;
    int status = decide(p, item, item_len, item_done, it, it->why, sizeof it->why);
    if (status != QM_STATUS_OK) item_done(it, status, it->why);
  }
  for (; i < n; i++) { /* cannot happen (the walk was counted), but no call may hang on it */
    eb->items[i].batch = eb;
    item_done(&eb->items[i], QM_STATUS_INTERNAL, "artifact missing from the batch");
  }
  qm_batcher_release(p->batcher);
  if (--eb->remaining == 0) finish_batch(eb);
}

static void teardown(void *state) {
  struct provider *p = state;
  qm_batcher_free(p->batcher);
  qm_channel_free(p->auditor);
  qm_key_free(p->key);
  qm_scorer_free(p->scorer);
  if (p->counter_names) /* counters keep pointing at these names until exit */
    for (size_t i = 0; i < p->topo->ndomains; i++) free(p->counter_names[i]);
  free(p->counter_names);
  free(p->initiated_by_domain);
  free(p->hub_ids);
  free(p);
}

/* resolve_byzantine: draws what the topology leaves open exactly as the requester does, so
 * every process agrees for a given RANDOM_SEED. */
static int resolve_byzantine(struct provider *p, struct qm_err *err) {
  struct qm_stream s;
  int rc = qm_stream_init(&s, p->topo, (uint64_t)qm_now_ns(), err);
  if (rc) return rc;
  p->byzantine = strcmp(s.byz.provider, p->self->ep.id) == 0;
  p->byzantine_at = s.byz.at;
  return 0;
}

static int64_t gauge_waiting(void *arg) { return (int64_t)qm_batcher_pending(((struct provider *)arg)->batcher); }
static int64_t gauge_batches(void *arg) { return (int64_t)qm_batcher_inflight(((struct provider *)arg)->batcher); }

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  struct provider *p = calloc(1, sizeof *p);
  if (!p) return qm_err_set(err, -ENOMEM, "out of memory");
  p->role = r;
  p->topo = qm_role_topology(r);
  p->self = qm_topology_find_provider(p->topo, qm_role_id(r));
  p->id_len = strlen(p->self->ep.id);
  char path[QM_PATH_MAX + QM_ID_MAX + 8];
  int rc = 0;
  if (p->self->signing_key[0]) snprintf(path, sizeof path, "%s", p->self->signing_key);
  else if (p->topo->keys_dir[0]) snprintf(path, sizeof path, "%s/%s.key", p->topo->keys_dir, p->self->ep.id);
  else rc = qm_err_set(err, -ENOENT, "%s: provider %s has no signing key (set signing_key, keys_dir or --keys)",
                       p->topo->source, p->self->ep.id);
  if (!rc) rc = qm_key_load_private(path, &p->key, err);
  if (!rc && !p->self->score_secret_len)
    rc = qm_err_set(err, -ENOENT, "%s: provider %s has no score secret (score_secret or score_secret_file)",
                    p->topo->source, p->self->ep.id);
  if (!rc && qm_scorer_new(p->self->score_secret, p->self->score_secret_len, p->self->ep.id, p->topo->expected_context,
                           &p->scorer))
    rc = qm_err_set(err, -ENOMEM, "provider %s: cannot key the scorer", p->self->ep.id);
  if (!rc) rc = resolve_byzantine(p, err);
  if (!rc) rc = qm_channel_new(qm_role_loop(r), p->topo->auditor.advertise, p->topo->auditor.id, &p->auditor, err);
  if (!rc) qm_channel_use_mux(p->auditor, "/qmesh.v1.Auditor/Mux"); /* vote batches as frames */
  /* retries back off by 50 ms at least; the loop wakes every 20 ms anyway */
  if (!rc) rc = qm_loop_add_tick(qm_role_loop(r), 20, on_tick, p);
  if (rc) {
    teardown(p);
    return rc;
  }
  qm_channel_set_limits(p->auditor, p->topo->worker_count, p->topo->post_queue_max);
  qm_role_add_upstream(r, p->topo->auditor.advertise);
  p->evaluated = qm_role_counter(r, "evaluated");
  p->initiated = qm_role_counter(r, "initiated");
  p->flipped = qm_role_counter(r, "byzantine_flips");
  p->reported = qm_role_counter(r, "reported");
  p->report_retries = qm_role_counter(r, "report_retries");
  p->report_rejected = qm_role_counter(r, "report_rejected");
  p->batches = qm_role_counter(r, "report_batches");
  struct qm_batcher_counters bc = {p->reported, p->report_rejected, p->report_failed, p->report_retries, p->batches,
                                   qm_role_histogram(r, "vote_latency_seconds")};
  if (!rc && qm_batcher_new(p->auditor, p->self->ep.id, p->key, &bc, &p->batcher))
    rc = qm_err_set(err, -ENOMEM, "out of memory");
  qm_role_add_gauge(r, "votes_waiting", gauge_waiting, p);
  qm_role_add_gauge(r, "auditor_batches_inflight", gauge_batches, p);
  p->refused_unauthorized = qm_role_counter(r, "refused_unauthorized");
  p->hub_ids = calloc(p->topo->nregions, sizeof *p->hub_ids);
  if (!p->hub_ids) rc = qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < p->topo->nregions; i++) p->hub_ids[i] = p->topo->regions[i].hub.id;
  p->report_failed = qm_role_counter(r, "report_failed");
  p->refused_invalid = qm_role_counter(r, "refused_invalid");
  p->refused_full = qm_role_counter(r, "refused_full");
  p->unknown_domain = qm_role_counter(r, "unknown_domain");
  p->initiated_by_domain = calloc(p->topo->ndomains + 1, sizeof *p->initiated_by_domain);
  p->counter_names = calloc(p->topo->ndomains + 1, sizeof *p->counter_names);
  if (!p->initiated_by_domain || !p->counter_names) rc = qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < p->topo->ndomains; i++) {
    size_t n = strlen(p->topo->domains[i].name) + sizeof "initiated_";
    p->counter_names[i] = malloc(n);
    if (!p->counter_names[i]) {
      rc = qm_err_set(err, -ENOMEM, "out of memory");
      break;
    }
    snprintf(p->counter_names[i], n, "initiated_%s", p->topo->domains[i].name);
    p->initiated_by_domain[i] = qm_role_counter(r, p->counter_names[i]);
    if (!p->initiated_by_domain[i]) rc = qm_err_set(err, -ENOSPC, "too many domains for the counter table");
  }
  struct qm_method_spec eval = {.path = "/qmesh.v1.Provider/Evaluate", .unary = on_evaluate, .ctx = p};
  struct qm_method_spec eval_batch = {.path = "/qmesh.v1.Provider/EvaluateBatch", .unary = on_evaluate_batch, .ctx = p};
  if (!rc && (qm_server_add_method(qm_role_server(r), &eval) || qm_server_add_method(qm_role_server(r), &eval_batch) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Provider/Stats") ||
              qm_server_add_mux(qm_role_server(r), "/qmesh.v1.Provider/Mux")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Provider service");
  if (rc) {
    teardown(p);
    return rc;
  }
  *state = p;
  return 0;
}

const struct qm_role_ops qm_provider_ops = {.role = "provider", .setup = setup, .teardown = teardown};
