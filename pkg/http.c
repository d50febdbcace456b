/* http.c: a role's HTTP side on libmicrohttpd: /metrics from the role's own Stats (and
 * Summary), and on fronts the reference's plain-HTTP ingress, each a gRPC client of its
 * own process. */
#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "metrics.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "roles.h"
#include "rpc_sync_channel.h"
#include "text.h"

#define QM_HTTP_SCRAPE_TIMEOUT_MS 5000
#define QM_HTTP_DISCARD_MAX (1u << 20) /* body bytes past the limit read before closing */
#define QM_HTTP_SUBMIT_TIMEOUT_MS (QM_HOP_TIMEOUT_MS + 5000) /* the front's hop, and some */

_Static_assert(QM_HTTP_BODY_MAX == 65536, "the 413 messages say 65536");

/* The ingress' status codes, counted per code. */
static const unsigned ingress_codes[] = {204, 400, 404, 405, 413, 429, 500, 503};
#define QM_HTTP_NCODES (sizeof ingress_codes / sizeof ingress_codes[0])

struct qm_http {
  char *role, *id, *target;
  char stats_path[48], summary_path[48];
  int is_auditor;
  struct qm_sync_channel *ch;
  struct MHD_Daemon *metrics, *ingress;
  unsigned metrics_port, ingress_port;
  atomic_uint_fast64_t codes[QM_HTTP_NCODES];
  atomic_uint_fast64_t scrape_failures;
  char warning[2 * QM_ERR_MSG_MAX];
};

/* One POST body being received (MHD's per-request pointer). */
struct upload {
  uint8_t *buf;
  size_t len, cap;
  size_t dropped; /* bytes read past QM_HTTP_BODY_MAX */
  int too_big;
  int answered; /* a response is queued already */
};

static const struct {
  const char *role, *service;
} services[] = {{"front", "qmesh.v1.Front"},
                {"hub", "qmesh.v1.Hub"},
                {"provider", "qmesh.v1.Provider"},
                {"auditor", "qmesh.v1.Auditor"}};

int qm_http_addr_off(const char *addr) { return !addr || !addr[0] || strcmp(addr, "off") == 0; }

/* split_addr: "HOST:PORT" or "[V6]:PORT" into |host| (brackets removed) and |port|. */
static int split_addr(const char *addr, char *host, size_t cap, unsigned *port) {
  const char *colon;
  size_t hlen;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (!close || close[1] != ':') return -EINVAL;
    colon = close + 1;
    addr++;
    hlen = (size_t)(close - addr);
  } else {
    colon = strrchr(addr, ':');
    if (!colon || strchr(addr, ':') != colon) return -EINVAL;
    hlen = (size_t)(colon - addr);
  }
  uint64_t p;
  if (hlen == 0 || hlen >= cap || qm_parse_u64(colon + 1, &p)) return -EINVAL;
  if (p > 65535) return -ERANGE;
  memcpy(host, addr, hlen);
  host[hlen] = '\0';
  *port = (unsigned)p;
  return 0;
}

int qm_http_default_addr(const char *grpc_listen, unsigned offset, char *out, size_t cap,
                         struct qm_err *err) {
  char host[QM_HTTP_ADDR_MAX];
  unsigned port;
  int rc = split_addr(grpc_listen, host, sizeof host, &port);
  if (rc) return qm_err_set(err, -EINVAL, "'%s': expected HOST:PORT", grpc_listen);
  if (port + offset > 65535)
    return qm_err_set(err, -ERANGE, "'%s': port %u + %u is past 65535", grpc_listen, port, offset);
  int n = snprintf(out, cap, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port + offset);
  if (n < 0 || (size_t)n >= cap) return qm_err_set(err, -E2BIG, "'%s': address too long", grpc_listen);
  return 0;
}

void qm_http_dial_target(const char *listen, char *out, size_t cap) {
  if (strncmp(listen, "0.0.0.0:", 8) == 0) snprintf(out, cap, "127.0.0.1:%s", listen + 8);
  else if (strncmp(listen, "[::]:", 5) == 0) snprintf(out, cap, "[::1]:%s", listen + 5);
  else snprintf(out, cap, "%s", listen);
}

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype, void *body,
                             size_t len, enum MHD_ResponseMemoryMode mode, const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
  if (!r) {
    if (mode == MHD_RESPMEM_MUST_FREE) free(body);
    return MHD_NO;
  }
  if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ok = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *allow,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *allow,
                                  const char *fmt, ...) {
  char text[700];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof text) n = sizeof text - 1;
  return reply(c, code, "text/plain; charset=utf-8", text, (size_t)n, MHD_RESPMEM_MUST_COPY, allow);
}

/* ---- /metrics ---- */

static void fill_http(struct qm_http *h, struct qm_metrics_counter *codes, char names[][8],
                      struct qm_metrics_http *out) {
  memset(out, 0, sizeof *out);
  if (h->ingress) {
    for (size_t i = 0; i < QM_HTTP_NCODES; i++) {
      snprintf(names[i], 8, "%u", ingress_codes[i]);
      codes[i].name = names[i];
      codes[i].value = atomic_load(&h->codes[i]);
    }
    out->ingress_responses = codes;
    out->ningress = QM_HTTP_NCODES;
  }
  out->scrape_failures = atomic_load(&h->scrape_failures);
}

/* call: one unary call to the role itself; the reply on OK, else NULL with |why| filled. */
static uint8_t *call(struct qm_http *h, const char *path, size_t *len, char *why, size_t cap) {
  static const uint8_t empty[1];
  struct qm_rpc_result res;
  struct qm_err err = {0};
  int rc = qm_sync_channel_call(h->ch, path, empty, 0, NULL, 0, QM_HTTP_SCRAPE_TIMEOUT_MS, 0, &res, &err);
  if (rc) {
    snprintf(why, cap, "%s", err.msg);
    return NULL;
  }
  if (res.status != QM_STATUS_OK) {
    snprintf(why, cap, "%s%s: %s: %s", h->target, path, qm_status_name(res.status), res.details);
    free(res.resp);
    return NULL;
  }
  *len = res.len;
  return res.resp ? res.resp : calloc(1, 1); /* an empty reply is a valid message */
}

/* scrape: the page into |t|; 0, or a negative code with |why|. */
static int scrape(struct qm_http *h, struct qm_text *t, char *why, size_t cap) {
  int rc = -EIO;
  size_t slen = 0, alen = 0;
  Qmesh__V1__RoleStats *st = NULL;
  Qmesh__V1__Summary *sum = NULL;
  struct qm_metrics_counter *counters = NULL;
  struct qm_metrics_gauge *gauges = NULL;
  struct qm_metrics_histogram *hists = NULL;
  struct qm_metrics_provider *providers = NULL;
  uint8_t *sbuf = call(h, h->stats_path, &slen, why, cap), *abuf = NULL;
  if (!sbuf) goto done;
  if (!(st = qmesh__v1__role_stats__unpack(NULL, slen, sbuf))) {
    snprintf(why, cap, "%s%s: malformed RoleStats", h->target, h->stats_path);
    goto done;
  }
  if (h->is_auditor) {
    if (!(abuf = call(h, h->summary_path, &alen, why, cap))) goto done;
    if (!(sum = qmesh__v1__summary__unpack(NULL, alen, abuf))) {
      snprintf(why, cap, "%s%s: malformed Summary", h->target, h->summary_path);
      goto done;
    }
  }
  counters = calloc(st->n_counters + 1, sizeof *counters);
  gauges = calloc(st->n_gauges + 1, sizeof *gauges);
  hists = calloc(st->n_histograms + 1, sizeof *hists);
  providers = calloc((sum ? sum->n_by_provider : 0) + 1, sizeof *providers);
  if (!counters || !gauges || !hists || !providers) {
    rc = -ENOMEM;
    snprintf(why, cap, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < st->n_counters; i++) {
    counters[i].name = st->counters[i]->name;
    counters[i].value = st->counters[i]->value;
  }
  for (size_t i = 0; i < st->n_gauges; i++) {
    gauges[i].name = st->gauges[i]->name;
    gauges[i].value = st->gauges[i]->value;
  }
  for (size_t i = 0; i < st->n_histograms; i++) {
    const Qmesh__V1__Histogram *hg = st->histograms[i];
    /* Arrays of different lengths: no name, so the renderer skips it (and counts it). */
    hists[i].name = hg->n_upper_bounds == hg->n_cumulative_counts ? hg->name : NULL;
    hists[i].upper_bounds = hg->upper_bounds;
    hists[i].cumulative_counts = hg->cumulative_counts;
    hists[i].nbounds = hg->n_upper_bounds;
    hists[i].count = hg->count;
    hists[i].sum = hg->sum;
  }
  struct qm_metrics_role role = {.role = st->role[0] ? st->role : h->role,
                                 .id = st->id[0] ? st->id : h->id,
                                 .region = st->region,
                                 .uptime_ms = st->uptime_ms,
                                 .counters = counters,
                                 .ncounters = st->n_counters,
                                 .gauges = gauges,
                                 .ngauges = st->n_gauges,
                                 .histograms = hists,
                                 .nhistograms = st->n_histograms};
  struct qm_metrics_auditor aud = {0};
  if (sum) {
    for (size_t i = 0; i < sum->n_by_provider; i++) {
      providers[i].id = sum->by_provider[i]->id;
      providers[i].votes = sum->by_provider[i]->votes;
      providers[i].disagreements = sum->by_provider[i]->disagreements;
      providers[i].initiations = sum->by_provider[i]->initiations;
    }
    aud = (struct qm_metrics_auditor){.decided = sum->decided,
                                      .incomplete = sum->incomplete,
                                      .pending = sum->pending,
                                      .quorum_successes = sum->quorum_successes,
                                      .quorum_failures = sum->quorum_failures,
                                      .votes_accepted = sum->votes_accepted,
                                      .votes_rejected = sum->votes_rejected,
                                      .votes_duplicate = sum->votes_duplicate,
                                      .votes_late = sum->votes_late,
                                      .unknown_domain_votes = sum->unknown_domain_votes,
                                      .quorum_threshold = sum->quorum_threshold,
                                      .providers = sum->providers,
                                      .by_provider = providers,
                                      .nproviders = sum->n_by_provider};
  }
  struct qm_metrics_counter codes[QM_HTTP_NCODES];
  char code_names[QM_HTTP_NCODES][8];
  struct qm_metrics_http hs;
  fill_http(h, codes, code_names, &hs);
  rc = qm_metrics_render(t, &role, sum ? &aud : NULL, &hs);
  if (rc) snprintf(why, cap, "the page is larger than %u bytes", QM_METRICS_TEXT_MAX);
done:
  free(counters);
  free(gauges);
  free(hists);
  free(providers);
  qmesh__v1__summary__free_unpacked(sum, NULL);
  qmesh__v1__role_stats__free_unpacked(st, NULL);
  free(abuf);
  free(sbuf);
  return rc;
}

/* ---- /healthz ---- */

/* healthz: the role's own grpc.health.v1.Health/Check (every service), over plain HTTP for
 * probes that cannot present a client certificate when the gRPC port wants one (kubelet's
 * gRPC probes under mutual TLS): 200 SERVING, else 503 with the status or the reason. */
static enum MHD_Result healthz(struct qm_http *h, struct MHD_Connection *c) {
  static const char path[] = "/grpc.health.v1.Health/Check";
  char why[600];
  size_t len = 0;
  uint8_t *buf = call(h, path, &len, why, sizeof why);
  if (!buf) return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "%s %s: no answer: %s\n", h->role, h->id, why);
  Grpc__Health__V1__HealthCheckResponse *r = grpc__health__v1__health_check_response__unpack(NULL, len, buf);
  free(buf);
  if (!r)
    return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "%s %s: malformed HealthCheckResponse\n", h->role, h->id);
  int serving = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&grpc__health__v1__health_check_response__serving_status__descriptor, r->status);
  char name[64];
  snprintf(name, sizeof name, "%s", v ? v->name : "UNKNOWN");
  grpc__health__v1__health_check_response__free_unpacked(r, NULL);
  return reply_text(c, serving ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "%s\n", name);
}

static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req) {
  (void)version;
  (void)upload;
  (void)req;
  struct qm_http *h = cls;
  if (*upload_size) { /* a GET with a body: ignore the body */
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD", "%s: use GET /metrics or GET /healthz\n", method);
  if (strcmp(url, "/healthz") == 0) return healthz(h, c);
  if (strcmp(url, "/metrics") != 0)
    return reply_text(c, MHD_HTTP_NOT_FOUND, NULL, "not found: %s (try /metrics or /healthz)\n", url);
  struct qm_text t;
  char why[600];
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  int rc = scrape(h, &t, why, sizeof why);
  if (rc) {
    qm_text_free(&t);
    atomic_fetch_add(&h->scrape_failures, 1);
    return reply_text(c, rc == -EIO ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
                      "%s %s: no metrics: %s\n", h->role, h->id, why);
  }
  return reply(c, MHD_HTTP_OK, QM_METRICS_CONTENT_TYPE, t.buf, t.len, MHD_RESPMEM_MUST_FREE, NULL);
}

/* ---- POST / on a front ---- */

static enum MHD_Result answer(struct qm_http *h, struct MHD_Connection *c, struct upload *u, unsigned code,
                              const char *allow, const char *fmt, const char *arg) {
  for (size_t i = 0; i < QM_HTTP_NCODES; i++)
    if (ingress_codes[i] == code) atomic_fetch_add(&h->codes[i], 1);
  if (u) u->answered = 1;
  if (code == MHD_HTTP_NO_CONTENT) return reply(c, code, NULL, NULL, 0, MHD_RESPMEM_PERSISTENT, NULL);
  return reply_text(c, code, allow, fmt, arg);
}

/* header_md: header |name| as metadata |key| when present; -EINVAL when not printable ASCII
 * (gRPC would refuse to send it). */
static int header_md(struct MHD_Connection *c, const char *name, const char *key, struct qm_rpc_md *md,
                     size_t *nmd) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  if (!v) return 0;
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return -EINVAL;
  md[*nmd] = (struct qm_rpc_md){.key = key, .value = v, .value_len = strlen(v)};
  (*nmd)++;
  return 0;
}

static enum MHD_Result submit(struct qm_http *h, struct MHD_Connection *c, struct upload *u) {
  static const struct {
    const char *header, *key;
  } carried[] = {{"X-Verification-Context", "x-verification-context"},
                 {"X-Domain", "x-domain"},
                 {"X-Request-Seq", "x-request-seq"}};
  struct qm_rpc_md md[3];
  size_t nmd = 0;
  for (size_t i = 0; i < 3; i++)
    if (header_md(c, carried[i].header, carried[i].key, md, &nmd))
      return answer(h, c, u, MHD_HTTP_BAD_REQUEST, NULL, "header %s: not printable ASCII\n", carried[i].header);
  Qmesh__V1__SubmitRequest sr = QMESH__V1__SUBMIT_REQUEST__INIT;
  sr.payload.data = u->buf;
  sr.payload.len = u->len;
  uint8_t buf[QM_HTTP_BODY_MAX + 16];
  size_t n = qmesh__v1__submit_request__pack(&sr, buf);
  struct qm_rpc_result res;
  struct qm_err err = {0};
  if (qm_sync_channel_call(h->ch, "/qmesh.v1.Front/Submit", buf, n, md, nmd, QM_HTTP_SUBMIT_TIMEOUT_MS, 0, &res,
                           &err))
    return answer(h, c, u, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s\n", err.msg);
  free(res.resp);
  char why[sizeof res.details + 32];
  snprintf(why, sizeof why, "%s: %s", qm_status_name(res.status), res.details);
  switch (res.status) {
    case QM_STATUS_OK: return answer(h, c, u, MHD_HTTP_NO_CONTENT, NULL, NULL, NULL);
    case QM_STATUS_INVALID_ARGUMENT: return answer(h, c, u, MHD_HTTP_BAD_REQUEST, NULL, "refused: %s\n", why);
    case QM_STATUS_RESOURCE_EXHAUSTED:
      /* The body's size was checked here against the front's own limit: this is load. */
      return answer(h, c, u, MHD_HTTP_TOO_MANY_REQUESTS, NULL, "busy: %s\n", why);
    case QM_STATUS_UNAVAILABLE: return answer(h, c, u, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "unavailable: %s\n", why);
    default: return answer(h, c, u, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "failed: %s\n", why);
  }
}

static enum MHD_Result on_ingress(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **req) {
  (void)version;
  struct qm_http *h = cls;
  struct upload *u = *req;
  if (!u) { /* headers only: decide what can be decided before reading the body */
    if (!(u = calloc(1, sizeof *u))) return MHD_NO;
    *req = u;
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
      return answer(h, c, u, MHD_HTTP_METHOD_NOT_ALLOWED, "POST", "%s: the ingress takes POST /\n", method);
    if (strcmp(url, "/") != 0) return answer(h, c, u, MHD_HTTP_NOT_FOUND, NULL, "not found: %s (POST /)\n", url);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared;
    if (cl && qm_parse_u64(cl, &declared) == 0 && declared > QM_HTTP_BODY_MAX) {
      /* A client that waits for "100 Continue" never sends the body: answer now. Others
       * are sending it already: read and drop it, so they read the 413 and not a reset. */
      if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) ||
          declared > QM_HTTP_BODY_MAX + QM_HTTP_DISCARD_MAX)
        return answer(h, c, u, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "body of %s bytes exceeds 65536\n", cl);
      u->too_big = 1;
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (u->answered) return MHD_YES;
    if (u->too_big || u->len + n > QM_HTTP_BODY_MAX) {
      /* Read on and drop the rest (so that the client reads the 413 rather than a reset),
       * up to a bound; past it, close the connection. */
      u->too_big = 1;
      u->dropped += n;
      return u->dropped > QM_HTTP_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (u->len + n > u->cap) {
      size_t cap = u->cap ? u->cap : 1024;
      while (cap < u->len + n) cap *= 2;
      if (cap > QM_HTTP_BODY_MAX) cap = QM_HTTP_BODY_MAX;
      uint8_t *b = realloc(u->buf, cap);
      if (!b) return answer(h, c, u, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "%s\n", "out of memory");
      u->buf = b;
      u->cap = cap;
    }
    memcpy(u->buf + u->len, upload, n);
    u->len += n;
    return MHD_YES;
  }
  if (u->answered) return MHD_YES;
  if (u->too_big)
    return answer(h, c, u, MHD_HTTP_CONTENT_TOO_LARGE, NULL, "body of more than %s bytes\n", "65536");
  return submit(h, c, u);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req, enum MHD_RequestTerminationCode why) {
  (void)cls;
  (void)c;
  (void)why;
  struct upload *u = *req;
  if (u) {
    free(u->buf);
    free(u);
    *req = NULL;
  }
}

/* ---- servers ---- */

static int start_daemon(struct qm_http *h, const char *addr, int ingress, unsigned max_conn, struct MHD_Daemon **out,
                        unsigned *port, struct qm_err *err) {
  const char *what = ingress ? "ingress" : "metrics";
  char host[QM_HTTP_ADDR_MAX], service[8];
  unsigned p;
  int rc = split_addr(addr, host, sizeof host, &p);
  if (rc) return qm_err_set(err, -EINVAL, "%s address '%s': expected HOST:PORT or off", what, addr);
  snprintf(service, sizeof service, "%u", p);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
  int g = getaddrinfo(host, service, &hints, &ai);
  if (g) return qm_err_set(err, -EINVAL, "%s address '%s': %s", what, addr, gai_strerror(g));
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
  /* The ingress blocks on Submit (up to the front's hop deadline): one thread per connection,
   * as many threads as the connection limit. /metrics is quick: one polling thread. */
  if (ingress) flags |= MHD_USE_THREAD_PER_CONNECTION;
  if (ai->ai_family == AF_INET6) flags |= MHD_USE_DUAL_STACK; /* like gRPC's [::] */
  struct MHD_Daemon *d =
      MHD_start_daemon(flags, (uint16_t)p, NULL, NULL, ingress ? on_ingress : on_metrics, h,
                       MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, max_conn,
                       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)QM_HTTP_IDLE_TIMEOUT_S,
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
                       MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
  freeaddrinfo(ai);
  if (!d)
    return qm_err_set(err, -EADDRINUSE, "%s address '%s': cannot listen (in use, or not an address of this host)",
                      what, addr);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : p;
  *out = d;
  return 0;
}

int qm_http_start(const struct qm_http_options *o, struct qm_http **out, struct qm_err *err) {
  const char *service = NULL;
  for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
    if (o->role && strcmp(o->role, services[i].role) == 0) service = services[i].service;
  if (!service) return qm_err_set(err, -EINVAL, "http: unknown role '%s'", o->role ? o->role : "(null)");
  if (!qm_http_addr_off(o->ingress_addr) && strcmp(o->role, "front") != 0)
    return qm_err_set(err, -EINVAL, "ingress address '%s': only a front has an ingress", o->ingress_addr);
  struct qm_http *h = calloc(1, sizeof *h);
  if (!h) return qm_err_set(err, -ENOMEM, "out of memory");
  int rc = -ENOMEM;
  h->role = strdup(o->role);
  h->id = strdup(o->id ? o->id : "");
  h->target = strdup(o->grpc_target ? o->grpc_target : "");
  if (!h->role || !h->id || !h->target) {
    qm_err_set(err, rc, "out of memory");
    goto fail;
  }
  snprintf(h->stats_path, sizeof h->stats_path, "/%s/Stats", service);
  snprintf(h->summary_path, sizeof h->summary_path, "/%s/Summary", service);
  h->is_auditor = strcmp(o->role, "auditor") == 0;
  unsigned max_conn = o->max_connections ? o->max_connections : QM_HTTP_CONNECTIONS_DEFAULT;
  if (!qm_http_addr_off(o->metrics_addr) || !qm_http_addr_off(o->ingress_addr)) {
    if (!h->target[0]) {
      rc = qm_err_set(err, -EINVAL, "http: no gRPC address to call");
      goto fail;
    }
    /* With mutual TLS the role's own certificate is both ends' identity. */
    if ((rc = qm_sync_channel_new(h->target, h->id[0] ? h->id : NULL, &h->ch, err))) goto fail;
  }
  for (int ingress = 0; ingress < 2; ingress++) {
    const char *addr = ingress ? o->ingress_addr : o->metrics_addr;
    int best_effort = ingress ? o->ingress_best_effort : o->metrics_best_effort;
    struct qm_err why = {0};
    if (qm_http_addr_off(addr)) continue;
    rc = start_daemon(h, addr, ingress, max_conn, ingress ? &h->ingress : &h->metrics,
                      ingress ? &h->ingress_port : &h->metrics_port, &why);
    if (rc && !best_effort) {
      qm_err_set(err, rc, "%s", why.msg);
      goto fail;
    }
    if (rc) {
      size_t used = strlen(h->warning);
      snprintf(h->warning + used, sizeof h->warning - used, "%s%s: left off", used ? "; " : "", why.msg);
    }
  }
  rc = 0;
  *out = h;
  return 0;
fail:
  qm_http_stop(h);
  return rc;
}

const char *qm_http_warning(const struct qm_http *h) { return h ? h->warning : ""; }
unsigned qm_http_metrics_port(const struct qm_http *h) { return h ? h->metrics_port : 0; }
unsigned qm_http_ingress_port(const struct qm_http *h) { return h ? h->ingress_port : 0; }

void qm_http_stop(struct qm_http *h) {
  if (!h) return;
  if (h->ingress) MHD_stop_daemon(h->ingress);
  if (h->metrics) MHD_stop_daemon(h->metrics);
  qm_sync_channel_free(h->ch);
  free(h->target);
  free(h->id);
  free(h->role);
  free(h);
}
