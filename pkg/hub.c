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
  void **evaluate;
  const char *front_id; /* the only peer allowed to relay through this hub (mutual TLS) */
  uint64_t *refused_unauthorized;
  uint64_t *received, *relays, *relay_failed, *refused_full, *refused_invalid, *undelivered;
};

/* One Artifact's fan-out: the reply goes to the front when every provider answered. */
struct fanout {
  struct hub *h;
  struct qm_call *call;
  size_t waiting, delivered;
  char last_error[160];
};

static void finish_fanout(struct fanout *fo) {
  struct hub *h = fo->h;
  /* Delivered to at least one provider: the auditor decides with what arrives (a provider
   * that is down makes the request incomplete, counted there). Nobody reached: the front
   * must know, so the requester can fail over. */
  if (fo->delivered) {
    qm_call_reply(fo->call, NULL, 0);
  } else {
    (*h->undelivered)++;
    qm_call_fail(fo->call, QM_STATUS_UNAVAILABLE, "hub %s reached no provider: %s", qm_role_id(h->role),
                 fo->last_error);
  }
  free(fo);
}

static void on_provider_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  (void)resp;
  (void)len;
  struct fanout *fo = arg;
  if (status == QM_STATUS_OK) {
    fo->delivered++;
  } else {
    (*fo->h->relay_failed)++;
    snprintf(fo->last_error, sizeof fo->last_error, "%s: %.120s", qm_status_name(status), details);
  }
  if (--fo->waiting == 0) finish_fanout(fo);
}

static void on_relay(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct hub *h = ctx;
  char peer[QM_ID_MAX];
  if (!qm_role_peer_allowed(call, &h->front_id, 1, peer, sizeof peer)) {
    (*h->refused_unauthorized)++;
    qm_call_fail(call, QM_STATUS_PERMISSION_DENIED, "hub %s relays only for front %s, not for '%s'",
                 qm_role_id(h->role), h->front_id, peer);
    return;
  }
  (*h->received)++;
  /* Envelope check only: garbage is refused, the bytes relayed are the bytes received. */
  Qmesh__V1__Artifact *a = qmesh__v1__artifact__unpack(NULL, len, req);
  if (!a) {
    (*h->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed Artifact");
    return;
  }
  qmesh__v1__artifact__free_unpacked(a, NULL);
  for (size_t i = 0; i < h->nproviders; i++) {
    if (!qm_channel_has_room(h->providers[i])) {
      /* All or nothing: a partial fan-out would make the request incomplete by design. */
      (*h->refused_full)++;
      qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "hub %s: queue to %s is full (POST_QUEUE_MAX)",
                   qm_role_id(h->role), qm_channel_target(h->providers[i]));
      return;
    }
  }
  struct fanout *fo = calloc(1, sizeof *fo);
  if (!fo) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  fo->h = h;
  fo->call = call;
  fo->waiting = h->nproviders;
  snprintf(fo->last_error, sizeof fo->last_error, "no provider answered");
  for (size_t i = 0; i < h->nproviders; i++) {
    (*h->relays)++;
    /* Not wait-for-ready: a provider that is down fails fast instead of holding every
     * request for the whole deadline; the auditor decides without it (incomplete). */
    if (qm_channel_call(h->providers[i], h->evaluate[i], req, len, NULL, 0, QM_HOP_TIMEOUT_MS, 0,
                        on_provider_reply, fo) != 0)
      on_provider_reply(fo, QM_STATUS_UNAVAILABLE, "cannot start the call", NULL, 0);
  }
}

static void teardown(void *state) {
  struct hub *h = state;
  for (size_t i = 0; i < h->nproviders; i++) qm_channel_free(h->providers[i]);
  free(h->providers);
  free(h->evaluate);
  free(h);
}

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  const struct qm_topology *t = qm_role_topology(r);
  struct hub *h = calloc(1, sizeof *h);
  if (!h) return qm_err_set(err, -ENOMEM, "out of memory");
  h->role = r;
  h->providers = calloc(t->nproviders, sizeof *h->providers);
  h->evaluate = calloc(t->nproviders, sizeof *h->evaluate);
  int rc = (h->providers && h->evaluate) ? 0 : qm_err_set(err, -ENOMEM, "out of memory");
  for (size_t i = 0; !rc && i < t->nproviders; i++) {
    rc = qm_channel_new(qm_role_loop(r), t->providers[i].ep.advertise, t->providers[i].ep.id, &h->providers[i], err);
    if (rc) break;
    h->nproviders++;
    qm_channel_set_limits(h->providers[i], t->worker_count, t->post_queue_max);
    h->evaluate[i] = qm_channel_method(h->providers[i], "/qmesh.v1.Provider/Evaluate");
    qm_role_add_upstream(r, t->providers[i].ep.advertise);
  }
  h->front_id = qm_topology_find_region_of(t, qm_role_id(r))->front.id;
  h->refused_unauthorized = qm_role_counter(r, "refused_unauthorized");
  h->received = qm_role_counter(r, "artifacts_received");
  h->relays = qm_role_counter(r, "relays");
  h->relay_failed = qm_role_counter(r, "relays_failed");
  h->refused_full = qm_role_counter(r, "refused_full");
  h->refused_invalid = qm_role_counter(r, "refused_invalid");
  h->undelivered = qm_role_counter(r, "artifacts_undelivered");
  struct qm_method_spec relay = {.path = "/qmesh.v1.Hub/Relay", .unary = on_relay, .ctx = h};
  if (!rc && (qm_server_add_method(qm_role_server(r), &relay) ||
              qm_role_add_stats_method(r, "/qmesh.v1.Hub/Stats")))
    rc = qm_err_set(err, -EINVAL, "cannot register the Hub service");
  if (rc) {
    teardown(h);
    return rc;
  }
  *state = h;
  return 0;
}

const struct qm_role_ops qm_hub_ops = {.role = "hub", .setup = setup, .teardown = teardown};
