/* http.h: a role's plain-HTTP side on libmicrohttpd: GET /metrics (Prometheus text format)
 * and GET /healthz (200 SERVING / 503, the role's own Health/Check, for probes that cannot
 * present a client certificate under mutual TLS) on every role, and on fronts the reference
 * demo's ingress, POST / answered 204.
 *
 * The HTTP threads never touch role state: they are gRPC clients of their own process over
 * one persistent channel. /metrics calls /qmesh.v1.<Service>/Stats (and the auditor's
 * Summary); /healthz calls /grpc.health.v1.Health/Check; POST / calls
 * /qmesh.v1.Front/Submit with the body and the X-Verification-Context, X-Domain and
 * X-Request-Seq headers as metadata. */
#ifndef QM_HTTP_H
#define QM_HTTP_H

#include <stddef.h>

#include "err.h"

/* Default ports when the topology and the flags name none: the gRPC port plus these. */
#define QM_HTTP_METRICS_PORT_OFFSET 10000
#define QM_HTTP_INGRESS_PORT_OFFSET 20000
#define QM_HTTP_CONNECTIONS_DEFAULT 64  /* per server; more are refused by libmicrohttpd */
#define QM_HTTP_BODY_MAX (64 * 1024)    /* the reference's MAX_REQUEST_BYTES; larger: 413 */
#define QM_HTTP_IDLE_TIMEOUT_S 30       /* an idle (keep-alive or stalled) connection is closed */
#define QM_HTTP_ADDR_MAX 300

struct qm_http;

struct qm_http_options {
  const char *metrics_addr; /* "HOST:PORT" or "[V6]:PORT" (port 0: any); NULL or "off": none */
  const char *ingress_addr; /* the same, for POST / (fronts only); NULL or "off": none */
  const char *role;         /* "front", "hub", "provider" or "auditor" */
  const char *id;           /* the instance id, for labels and messages */
  const char *grpc_target;  /* where this role's gRPC server answers, "127.0.0.1:8000" */
  unsigned max_connections; /* per server; 0: QM_HTTP_CONNECTIONS_DEFAULT */
  /* Best effort (for default addresses nobody asked for): when that server cannot start it
   * stays off and qm_http_warning says why, instead of qm_http_start failing. */
  int metrics_best_effort, ingress_best_effort;
};

/* qm_http_start: binds and starts the servers |o| asks for (every string is copied). Both
 * off is allowed (then |*out| serves nothing). An ingress on a role other than a front is
 * refused. Returns 0, or a negative code with the address and the reason in |err|; on
 * failure nothing is left running and |*out| is untouched. Call after qm_rpc_init and stop
 * before qm_rpc_shutdown. */
int qm_http_start(const struct qm_http_options *o, struct qm_http **out, struct qm_err *err);

/* qm_http_warning: why a best-effort server is off, or "" (borrowed from |h|). */
const char *qm_http_warning(const struct qm_http *h);

/* The ports bound (useful with port 0); 0 when that server is off. */
unsigned qm_http_metrics_port(const struct qm_http *h);
unsigned qm_http_ingress_port(const struct qm_http *h);

/* qm_http_stop: stops accepting, waits for the requests in progress (each is bounded by its
 * gRPC deadline, so stop before the role's own server stops), frees |h|. NULL-safe. */
void qm_http_stop(struct qm_http *h);

/* qm_http_default_addr: the host of |grpc_listen| ("HOST:PORT") with the port plus |offset|,
 * into |out|. Returns 0, or -EINVAL / -ERANGE with the address in |err| when |grpc_listen|
 * has no port or the sum is past 65535. */
int qm_http_default_addr(const char *grpc_listen, unsigned offset, char *out, size_t cap,
                         struct qm_err *err);

/* qm_http_dial_target: the address to dial to reach a server listening on |listen|: the
 * wildcards 0.0.0.0 and [::] become 127.0.0.1 and [::1]. */
void qm_http_dial_target(const char *listen, char *out, size_t cap);

/* qm_http_addr_off: 1 when |addr| is NULL, "" or "off" (the server is disabled). */
int qm_http_addr_off(const char *addr);

#endif
