/* provider.c: the only decision authority: scores each Artifact with its own secret,
 * applies the domain threshold, decides `initiated`, signs the Outcome bytes with its
 * Ed25519 key and reports them to the auditor. Its reply to the hub carries no decision. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "decision.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "roles.h"
#include "sign.h"
#include "stream.h"

struct provider {
  struct qm_role *role;
  const struct qm_topology *topo;
  const struct qm_provider *self;
  struct qm_key *key;
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

static size_t domain_index(const struct qm_topology *t, const char *domain) {
  for (size_t i = 0; i < t->ndomains; i++)
    if (strcmp(t->domains[i].name, domain) == 0) return i;
  return t->ndomains;
}

static void on_evaluate(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct provider *p = ctx;
  char peer[QM_ID_MAX];
  if (!qm_role_peer_allowed(call, p->hub_ids, p->topo->nregions, peer, sizeof peer)) {
    (*p->refused_unauthorized)++;
    qm_call_fail(call, QM_STATUS_PERMISSION_DENIED, "provider %s evaluates only for hubs, not for '%s'",
                 qm_role_id(p->role), peer);
    return;
  }
  Qmesh__V1__Artifact *a = qmesh__v1__artifact__unpack(NULL, len, req);
  if (!a) {
    (*p->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed Artifact");
    return;
  }
  if (a->request_repr.len != 32) {
    (*p->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "request_repr must be 32 bytes, got %zu", a->request_repr.len);
    qmesh__v1__artifact__free_unpacked(a, NULL);
    return;
  }
  if (!qm_channel_has_room(p->auditor)) {
    (*p->refused_full)++;
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "provider %s: queue to the auditor is full (POST_QUEUE_MAX)",
                 qm_role_id(p->role));
    qmesh__v1__artifact__free_unpacked(a, NULL);
    return;
  }
  (*p->evaluated)++;
  const struct qm_topology *t = p->topo;
  double score = qm_decision_score(p->self->score_secret, p->self->score_secret_len, p->self->ep.id,
                                   a->domain, a->request_repr.data, a->verification_context,
                                   strlen(a->verification_context), t->expected_context);
  size_t d = domain_index(t, a->domain);
  if (d == t->ndomains) (*p->unknown_domain)++;
  int honest = score >= qm_topology_threshold(t, a->domain);
  int initiated = qm_decision_initiated(score, qm_topology_threshold(t, a->domain), p->byzantine,
                                        a->sequence, p->byzantine_at);
  if (initiated != honest) (*p->flipped)++;
  if (initiated) {
    (*p->initiated)++;
    if (d < t->ndomains) (*p->initiated_by_domain[d])++;
  }
  Qmesh__V1__Outcome o = QMESH__V1__OUTCOME__INIT;
  o.request_repr = a->request_repr;
  o.provider_id = (char *)p->self->ep.id;
  o.domain = a->domain;
  o.initiated = initiated;
  o.sequence = a->sequence;
  o.decided_unix_nanos = qm_now_ns();
  size_t olen = qmesh__v1__outcome__get_packed_size(&o);
  uint8_t *obuf = malloc(olen ? olen : 1);
  if (!obuf) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  } else {
    qmesh__v1__outcome__pack(&o, obuf);
    /* These bytes are what gets signed (as a leaf of the batch's Merkle tree). */
    if (qm_batcher_add(p->batcher, obuf, olen, call)) qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  free(obuf);
  qmesh__v1__artifact__free_unpacked(a, NULL);
}

static void teardown(void *state) {
  struct provider *p = state;
  qm_batcher_free(p->batcher);
  qm_channel_free(p->auditor);
  qm_key_free(p->key);
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

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  struct provider *p = calloc(1, sizeof *p);
  if (!p) return qm_err_set(err, -ENOMEM, "out of memory");
  p->role = r;
  p->topo = qm_role_topology(r);
  p->self = qm_topology_find_provider(p->topo, qm_role_id(r));
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
  if (!rc) rc = resolve_byzantine(p, err);
  if (!rc) rc = qm_channel_new(qm_role_loop(r), p->topo->auditor.advertise, p->topo->auditor.id, &p->auditor, err);
  if (!rc) rc = qm_loop_add_tick(qm_role_loop(r), 5, on_tick, p);
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
  struct qm_batcher_counters bc = {p->reported, p->report_rejected, p->report_failed, p->report_retries, p->batches};
  if (!rc && qm_batcher_new(p->auditor, p->self->ep.id, p->key, &bc, &p->batcher))
    rc = qm_err_set(err, -ENOMEM, "out of memory");
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
  if (!rc && (qm_server_add_method(qm_role_server(r), &eval) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Provider/Stats")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Provider service");
  if (rc) {
    teardown(p);
    return rc;
  }
  *state = p;
  return 0;
}

const struct qm_role_ops qm_provider_ops = {.role = "provider", .setup = setup, .teardown = teardown};
