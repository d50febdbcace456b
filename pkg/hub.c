/* hub.c: the regional hub: relays each Artifact's bytes unchanged to every provider and
 * counts the relays. It decodes nothing but the envelope check, holds no key and never sees
 * an outcome. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmesh/v1/qmesh.pb-c.h"
#include "roles.h"

struct hub {
  struct qm_role *role;
  size_t nproviders;
  struct qm_channel **providers;
  void **evaluate, **evaluate_batch;
  struct qm_hist *latency; /* fan-out -> every provider answered */
  const char *front_id; /* the only peer allowed to relay through this hub (mutual TLS) */
  uint64_t *refused_unauthorized;
  uint64_t *received, *relays, *relay_failed, *refused_full, *refused_invalid, *undelivered;
};

/* One fan-out (an Artifact, or a batch of them): the reply goes to the front when every
 * provider answered. */
struct fanout {
  struct hub *h;
  struct qm_call *call;
  int batch;            /* RelayBatch: one status per artifact */
  size_t waiting, nitems;
  int64_t started_ns;
  char last_error[160];
  size_t delivered[];   /* per artifact: providers that took it */
};

static void reply_batch(struct fanout *fo) {
  struct hub *h = fo->h;
  Qmesh__V1__ItemStatus *st = calloc(fo->nitems ? fo->nitems : 1, sizeof *st);
  Qmesh__V1__ItemStatus **sp = calloc(fo->nitems ? fo->nitems : 1, sizeof *sp);
  uint8_t *buf = NULL;
  char why[200];
  snprintf(why, sizeof why, "hub %s reached no provider: %s", qm_role_id(h->role), fo->last_error);
  if (st && sp) {
    for (size_t i = 0; i < fo->nitems; i++) {
      qmesh__v1__item_status__init(&st[i]);
      if (!fo->delivered[i]) {
        (*h->undelivered)++;
        st[i].code = QM_STATUS_UNAVAILABLE;
        st[i].message = why;
      }
      sp[i] = &st[i];
    }
    Qmesh__V1__BatchReply r = QMESH__V1__BATCH_REPLY__INIT;
    r.n_items = fo->nitems;
    r.items = sp;
    size_t len = qmesh__v1__batch_reply__get_packed_size(&r);
    buf = malloc(len ? len : 1);
    if (buf) {
      qmesh__v1__batch_reply__pack(&r, buf);
      qm_call_reply(fo->call, buf, len);
    }
  }
  if (!buf) qm_call_fail(fo->call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  free(buf);
  free(st);
  free(sp);
}

static void finish_fanout(struct fanout *fo) {
  struct hub *h = fo->h;
  if (h->latency) qm_hist_observe_ns(h->latency, qm_mono_ns() - fo->started_ns);
  /* Delivered to at least one provider: the auditor decides with what arrives (a provider
   * that is down makes the request incomplete, counted there). Nobody reached: the front
   * must know, so the requester can fail over. */
  if (fo->batch) {
    reply_batch(fo);
  } else if (fo->delivered[0]) {
    qm_call_reply(fo->call, NULL, 0);
  } else {
    (*h->undelivered)++;
    qm_call_fail(fo->call, QM_STATUS_UNAVAILABLE, "hub %s reached no provider: %s", qm_role_id(h->role),
                 fo->last_error);
  }
  free(fo);
}

static void on_provider_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct fanout *fo = arg;
  Qmesh__V1__BatchReply *r = NULL;
  if (status == QM_STATUS_OK && fo->batch) {
    r = qmesh__v1__batch_reply__unpack(NULL, len, resp);
    if (!r || r->n_items != fo->nitems) {
      status = QM_STATUS_INTERNAL;
      details = "the provider's reply does not match the batch";
    }
  }
  if (status == QM_STATUS_OK) {
    for (size_t i = 0; i < fo->nitems; i++) {
      if (!r || r->items[i]->code == QM_STATUS_OK) {
        fo->delivered[i]++;
      } else {
        (*fo->h->relay_failed)++;
        snprintf(fo->last_error, sizeof fo->last_error, "%.140s", r->items[i]->message);
      }
    }
  } else {
    (*fo->h->relay_failed) += fo->nitems;
    snprintf(fo->last_error, sizeof fo->last_error, "%s: %.120s", qm_status_name(status), details);
  }
  if (r) qmesh__v1__batch_reply__free_unpacked(r, NULL);
  if (--fo->waiting == 0) finish_fanout(fo);
}

/* relay: the received bytes, unchanged, to every provider. */
static void relay(struct hub *h, struct qm_call *call, const uint8_t *req, size_t len, size_t nitems, int batch) {
  for (size_t i = 0; i < h->nproviders; i++) {
    if (!qm_channel_has_room(h->providers[i])) {
      /* All or nothing: a partial fan-out would make the request incomplete by design. */
      (*h->refused_full) += nitems;
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "hub %s: queue to %s is full (POST_QUEUE_MAX)",
                   qm_role_id(h->role), qm_channel_target(h->providers[i]));
      return;
    }
  }
  struct fanout *fo = calloc(1, sizeof *fo + (nitems ? nitems : 1) * sizeof fo->delivered[0]);
  if (!fo) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  fo->h = h;
  fo->call = call;
  fo->batch = batch;
  fo->nitems = nitems;
  fo->waiting = h->nproviders;
  fo->started_ns = qm_mono_ns();
  snprintf(fo->last_error, sizeof fo->last_error, "no provider answered");
  for (size_t i = 0; i < h->nproviders; i++) {
    (*h->relays) += nitems; /* fan-out posts issued, one per artifact and provider */
    /* Not wait-for-ready: a provider that is down fails fast instead of holding every
     * request for the whole deadline; the auditor decides without it (incomplete). */
    if (qm_channel_call(h->providers[i], batch ? h->evaluate_batch[i] : h->evaluate[i], req, len, NULL, 0,
                        QM_HOP_TIMEOUT_MS, 0, on_provider_reply, fo) != 0)
      on_provider_reply(fo, QM_STATUS_UNAVAILABLE, "cannot start the call", NULL, 0);
  }
}

static int peer_ok(struct hub *h, struct qm_call *call) {
  char peer[QM_ID_MAX];
  if (qm_role_peer_allowed(call, &h->front_id, 1, peer, sizeof peer)) return 1;
  (*h->refused_unauthorized)++;
  qm_call_fail(call, QM_STATUS_PERMISSION_DENIED, "hub %s relays only for front %s, not for '%s'",
               qm_role_id(h->role), h->front_id, peer);
  return 0;
}

static void on_relay(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct hub *h = ctx;
  if (!peer_ok(h, call)) return;
  (*h->received)++;
  /* Envelope check only: garbage is refused, the bytes relayed are the bytes received. */
  Qmesh__V1__Artifact *a = qmesh__v1__artifact__unpack(NULL, len, req);
  if (!a) {
    (*h->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed Artifact");
    return;
  }
  qmesh__v1__artifact__free_unpacked(a, NULL);
  relay(h, call, req, len, 1, 0);
}

static void on_relay_batch(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct hub *h = ctx;
  if (!peer_ok(h, call)) return;
  Qmesh__V1__ArtifactBatch *b = qmesh__v1__artifact_batch__unpack(NULL, len, req);
  if (!b) {
    (*h->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed ArtifactBatch");
    return;
  }
  size_t n = b->n_artifacts;
  qmesh__v1__artifact_batch__free_unpacked(b, NULL);
  (*h->received) += n;
  relay(h, call, req, len, n, 1);
}

static void teardown(void *state) {
  struct hub *h = state;
  for (size_t i = 0; i < h->nproviders; i++) qm_channel_free(h->providers[i]);
  free(h->providers);
  free(h->evaluate);
  free(h->evaluate_batch);
  free(h);
}

static int64_t provider_calls(void *arg, int queued) {
  struct hub *h = arg;
  int64_t sum = 0;
  for (size_t i = 0; i < h->nproviders; i++) {
    struct qm_channel_stats st;
    qm_channel_stats(h->providers[i], &st);
    sum += (int64_t)(queued ? st.queued : st.inflight);
  }
  return sum;
}
static int64_t gauge_inflight(void *arg) { return provider_calls(arg, 0); }
static int64_t gauge_queued(void *arg) { return provider_calls(arg, 1); }

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  const struct qm_topology *t = qm_role_topology(r);
  struct hub *h = calloc(1, sizeof *h);
  if (!h) return qm_err_set(err, -ENOMEM, "out of memory");
  h->role = r;
  h->providers = calloc(t->nproviders, sizeof *h->providers);
  h->evaluate = calloc(t->nproviders, sizeof *h->evaluate);
  h->evaluate_batch = calloc(t->nproviders, sizeof *h->evaluate_batch);
  int rc = (h->providers && h->evaluate && h->evaluate_batch) ? 0 : qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < t->nproviders; i++) {
    rc = qm_channel_new(qm_role_loop(r), t->providers[i].ep.advertise, t->providers[i].ep.id, &h->providers[i], err);
    if (rc) break;
    h->nproviders++;
    qm_channel_set_limits(h->providers[i], t->worker_count, t->post_queue_max);
    h->evaluate[i] = qm_channel_method(h->providers[i], "/qmesh.v1.Provider/Evaluate");
    h->evaluate_batch[i] = qm_channel_method(h->providers[i], "/qmesh.v1.Provider/EvaluateBatch");
    qm_channel_use_mux(h->providers[i], "/qmesh.v1.Provider/Mux"); /* one stream per provider */
    qm_role_add_upstream(r, t->providers[i].ep.advertise);
  }
  h->front_id = qm_topology_find_region_of(t, qm_role_id(r))->front.id;
  h->refused_unauthorized = qm_role_counter(r, "refused_unauthorized");
  h->latency = qm_role_histogram(r, "relay_latency_seconds");
  qm_role_add_gauge(r, "provider_calls_inflight", gauge_inflight, h);
  qm_role_add_gauge(r, "provider_calls_queued", gauge_queued, h);
  h->received = qm_role_counter(r, "artifacts_received");
  h->relays = qm_role_counter(r, "relays");
  h->relay_failed = qm_role_counter(r, "relays_failed");
  h->refused_full = qm_role_counter(r, "refused_full");
  h->refused_invalid = qm_role_counter(r, "refused_invalid");
  h->undelivered = qm_role_counter(r, "artifacts_undelivered");
  struct qm_method_spec relay1 = {.path = "/qmesh.v1.Hub/Relay", .unary = on_relay, .ctx = h};
  struct qm_method_spec relayn = {.path = "/qmesh.v1.Hub/RelayBatch", .unary = on_relay_batch, .ctx = h};
  if (!rc && (qm_server_add_method(qm_role_server(r), &relay1) || qm_server_add_method(qm_role_server(r), &relayn) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Hub/Stats") ||
              qm_server_add_mux(qm_role_server(r), "/qmesh.v1.Hub/Mux")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Hub service");
  if (rc) {
    teardown(h);
    return rc;
  }
  *state = h;
  return 0;
}

const struct qm_role_ops qm_hub_ops = {.role = "hub", .setup = setup, .teardown = teardown};
