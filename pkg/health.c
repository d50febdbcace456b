/* health.c: grpc.health.v1.Health: Check answers per service, Watch streams changes. */
#include "health.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

#define QM_WATCHERS_MAX 64
#define QM_HEALTH_SERVICES_MAX 32

struct watcher {
  struct qm_call *call;
  char service[128];
  int last; /* last status sent */
};

struct qm_health {
  struct qm_server *srv;
  int serving;
  int draining;
  struct watcher watchers[QM_WATCHERS_MAX];
  size_t nwatchers;
};

enum {
  ST_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
  ST_NOT_SERVING = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
  ST_UNKNOWN = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN,
};

/* status_of: the status of |service|, or ST_UNKNOWN for a service this server lacks. */
static int status_of(const struct qm_health *h, const char *service) {
  int st = h->serving && !h->draining ? ST_SERVING : ST_NOT_SERVING;
  if (!service[0]) return st;
  const char *names[QM_HEALTH_SERVICES_MAX];
  size_t n = qm_server_services(h->srv, names, QM_HEALTH_SERVICES_MAX);
  for (size_t i = 0; i < n && i < QM_HEALTH_SERVICES_MAX; i++)
    if (strcmp(names[i], service) == 0) return st;
  return ST_UNKNOWN;
}

static int send_status(struct qm_call *call, int st) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  uint8_t buf[16];
  size_t len = grpc__health__v1__health_check_response__pack(&resp, buf);
  return qm_call_send(call, buf, len);
}

static void on_check(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct qm_health *h = ctx;
  Grpc__Health__V1__HealthCheckRequest *in = grpc__health__v1__health_check_request__unpack(NULL, len, req);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
    return;
  }
  int st = status_of(h, in->service);
  if (st == ST_UNKNOWN) {
    qm_call_fail(call, QM_STATUS_NOT_FOUND, "unknown service '%.100s'", in->service);
  } else {
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
    uint8_t buf[16];
    size_t n = grpc__health__v1__health_check_response__pack(&resp, buf);
    qm_call_reply(call, buf, n);
  }
  grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

static struct watcher *find_watcher(struct qm_health *h, struct qm_call *call) {
  for (size_t i = 0; i < h->nwatchers; i++)
    if (h->watchers[i].call == call) return &h->watchers[i];
  return NULL;
}

static void on_watch(void *ctx, struct qm_call *call, const uint8_t *msg, size_t len) {
  struct qm_health *h = ctx;
  if (!msg) return; /* half-close: keep streaming until the client cancels or we drain */
  if (find_watcher(h, call)) return; /* Watch takes one request; ignore more */
  Grpc__Health__V1__HealthCheckRequest *in = grpc__health__v1__health_check_request__unpack(NULL, len, msg);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
    return;
  }
  if (h->nwatchers == QM_WATCHERS_MAX) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "too many Watch streams (%d)", QM_WATCHERS_MAX);
  } else {
    struct watcher *w = &h->watchers[h->nwatchers++];
    w->call = call;
    size_t n = strlen(in->service);
    if (n >= sizeof w->service) n = sizeof w->service - 1;
    memcpy(w->service, in->service, n);
    w->service[n] = '\0';
    w->last = status_of(h, w->service);
    send_status(call, w->last);
    if (h->draining) qm_call_finish(call, QM_STATUS_OK, NULL);
  }
  grpc__health__v1__health_check_request__free_unpacked(in, NULL);
}

static void on_watch_close(void *ctx, struct qm_call *call) {
  struct qm_health *h = ctx;
  struct watcher *w = find_watcher(h, call);
  if (w) *w = h->watchers[--h->nwatchers];
}

static void notify(struct qm_health *h) {
  for (size_t i = 0; i < h->nwatchers; i++) {
    struct watcher *w = &h->watchers[i];
    int st = status_of(h, w->service);
    if (st != w->last) {
      w->last = st;
      send_status(w->call, st);
    }
  }
}

static void on_drain(void *ctx) {
  struct qm_health *h = ctx;
  h->draining = 1;
  notify(h);
  /* End every Watch so the server's shutdown need not wait for the grace period. */
  for (size_t i = 0; i < h->nwatchers; i++) qm_call_finish(h->watchers[i].call, QM_STATUS_OK, NULL);
}

int qm_health_mount(struct qm_server *srv, struct qm_health **out) {
  struct qm_health *h = calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  h->srv = srv;
  struct qm_method_spec check = {.path = "/grpc.health.v1.Health/Check", .unary = on_check, .ctx = h};
  struct qm_method_spec watch = {.path = "/grpc.health.v1.Health/Watch", .stream = on_watch,
                                 .on_close = on_watch_close, .ctx = h};
  int rc = qm_server_add_method(srv, &check);
  if (!rc) rc = qm_server_add_method(srv, &watch);
  if (!rc) rc = qm_server_on_drain(srv, on_drain, h);
  if (rc) {
    free(h);
    return rc;
  }
  *out = h;
  return 0;
}

void qm_health_set_serving(struct qm_health *h, int serving) {
  h->serving = serving;
  notify(h);
}

int qm_health_serving(const struct qm_health *h) { return h->serving && !h->draining; }

void qm_health_free(struct qm_health *h) { free(h); }
