/* role.c: the life of a role process: flags, topology, server, drain on SIGTERM, exit. */
#include "role.h"

#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "http.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "reflection.h"

#define QM_ROLE_GRACE_MS 5000
#define QM_ROLE_HISTS_MAX 8
#define QM_ROLE_GAUGES_MAX 16 /* in-flight work gets this long after the drain */

struct qm_role {
  struct qm_role_options opt;
  struct qm_topology *topo;
  const struct qm_endpoint *self;
  const char *region;
  struct qm_loop *loop;
  struct qm_server *server;
  struct qm_health *health;
  struct qm_reflection *reflection;
  const struct qm_role_ops *ops;
  atomic_int draining;
  int64_t started_ns;
  struct qm_counter counters[QM_ROLE_COUNTERS_MAX];
  size_t ncounters;
  uint64_t counters_dropped;
  const char *upstream[QM_ROLE_UPSTREAM_MAX];
  size_t nupstream;
  struct {
    const char *name;
    struct qm_hist h;
  } hists[QM_ROLE_HISTS_MAX];
  size_t nhists;
  struct {
    const char *name;
    qm_gauge_fn fn;
    void *arg;
  } gauges[QM_ROLE_GAUGES_MAX];
  size_t ngauges;
};

struct qm_hist *qm_role_histogram(struct qm_role *r, const char *name) {
  for (size_t i = 0; i < r->nhists; i++)
    if (strcmp(r->hists[i].name, name) == 0) return &r->hists[i].h;
  if (r->nhists == QM_ROLE_HISTS_MAX) {
    r->counters_dropped++;
    return NULL;
  }
  r->hists[r->nhists].name = name;
  return &r->hists[r->nhists++].h;
}

int qm_role_add_gauge(struct qm_role *r, const char *name, qm_gauge_fn fn, void *arg) {
  if (r->ngauges == QM_ROLE_GAUGES_MAX) return -ENOSPC;
  r->gauges[r->ngauges].name = name;
  r->gauges[r->ngauges].fn = fn;
  r->gauges[r->ngauges].arg = arg;
  r->ngauges++;
  return 0;
}

struct qm_loop *qm_role_loop(struct qm_role *r) { return r->loop; }
struct qm_server *qm_role_server(struct qm_role *r) { return r->server; }
const struct qm_topology *qm_role_topology(const struct qm_role *r) { return r->topo; }
const char *qm_role_id(const struct qm_role *r) { return r->opt.id; }
const struct qm_role_options *qm_role_options(const struct qm_role *r) { return &r->opt; }

uint64_t *qm_role_counter(struct qm_role *r, const char *name) {
  for (size_t i = 0; i < r->ncounters; i++)
    if (strcmp(r->counters[i].name, name) == 0) return &r->counters[i].value;
  if (r->ncounters == QM_ROLE_COUNTERS_MAX) {
    r->counters_dropped++;
    return NULL;
  }
  r->counters[r->ncounters].name = name;
  r->counters[r->ncounters].value = 0;
  return &r->counters[r->ncounters++].value;
}

void qm_role_add_upstream(struct qm_role *r, const char *addr) {
  if (r->nupstream < QM_ROLE_UPSTREAM_MAX) r->upstream[r->nupstream++] = addr;
}

static void on_stats(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct qm_role *r = ctx;
  Qmesh__V1__StatsRequest *in = qmesh__v1__stats_request__unpack(NULL, len, req);
  if (!in) {
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed StatsRequest");
    return;
  }
  qmesh__v1__stats_request__free_unpacked(in, NULL);
  struct qm_server_stats ss;
  qm_server_stats(r->server, &ss);
  Qmesh__V1__Counter c[QM_ROLE_COUNTERS_MAX + 4];
  Qmesh__V1__Counter *cp[QM_ROLE_COUNTERS_MAX + 4];
  size_t n = 0;
  const char *server_names[] = {"rpc_calls", "rpc_unimplemented", "rpc_failed", "counters_dropped"};
  uint64_t server_values[] = {ss.calls, ss.unimplemented, ss.failed, r->counters_dropped};
  for (size_t i = 0; i < r->ncounters; i++) {
    qmesh__v1__counter__init(&c[n]);
    c[n].name = (char *)r->counters[i].name;
    c[n].value = r->counters[i].value;
    cp[n] = &c[n];
    n++;
  }
  for (size_t i = 0; i < 4; i++) {
    qmesh__v1__counter__init(&c[n]);
    c[n].name = (char *)server_names[i];
    c[n].value = server_values[i];
    cp[n] = &c[n];
    n++;
  }
  Qmesh__V1__RoleStats out = QMESH__V1__ROLE_STATS__INIT;
  out.id = (char *)r->opt.id;
  out.role = (char *)r->ops->role;
  out.region = (char *)(r->region ? r->region : "");
  out.listen = (char *)r->self->listen;
  out.uptime_ms = (uint64_t)((qm_mono_ns() - r->started_ns) / 1000000);
  out.n_counters = n;
  out.counters = cp;
  out.n_upstream = r->nupstream;
  out.upstream = (char **)r->upstream;
  out.pid = (uint32_t)getpid();
  Qmesh__V1__Gauge g[QM_ROLE_GAUGES_MAX], *gp[QM_ROLE_GAUGES_MAX];
  for (size_t i = 0; i < r->ngauges; i++) {
    qmesh__v1__gauge__init(&g[i]);
    g[i].name = (char *)r->gauges[i].name;
    g[i].value = r->gauges[i].fn(r->gauges[i].arg);
    gp[i] = &g[i];
  }
  out.n_gauges = r->ngauges;
  out.gauges = gp;
  Qmesh__V1__Histogram hs[QM_ROLE_HISTS_MAX], *hp[QM_ROLE_HISTS_MAX];
  uint64_t cum[QM_ROLE_HISTS_MAX][QM_HIST_BUCKETS];
  for (size_t i = 0; i < r->nhists; i++) {
    qmesh__v1__histogram__init(&hs[i]);
    qm_hist_cumulative(&r->hists[i].h, cum[i]);
    hs[i].name = (char *)r->hists[i].name;
    hs[i].n_upper_bounds = QM_HIST_BUCKETS;
    hs[i].upper_bounds = (double *)qm_hist_bounds;
    hs[i].n_cumulative_counts = QM_HIST_BUCKETS;
    hs[i].cumulative_counts = cum[i];
    hs[i].count = r->hists[i].h.count;
    hs[i].sum = r->hists[i].h.sum;
    hp[i] = &hs[i];
  }
  out.n_histograms = r->nhists;
  out.histograms = hp;
  size_t size = qmesh__v1__role_stats__get_packed_size(&out);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  qmesh__v1__role_stats__pack(&out, buf);
  qm_call_reply(call, buf, size);
  free(buf);
}

int qm_role_add_stats_method(struct qm_role *r, const char *path) {
  struct qm_method_spec spec = {.path = path, .unary = on_stats, .ctx = r};
  return qm_server_add_method(r->server, &spec);
}

int qm_role_peer_allowed(struct qm_call *call, const char *const *allowed, size_t n, char *peer, size_t cap) {
  if (!qm_rpc_tls_enabled()) return 1;
  if (qm_call_peer_identity(call, peer, cap)) {
    snprintf(peer, cap, "unauthenticated");
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (strcmp(peer, allowed[i]) == 0) return 1;
  return 0;
}

int qm_role_tls_setup(const struct qm_topology *t, const char *id, struct qm_err *err) {
  if (!t->tls.enabled) return 0;
  char cert[QM_PATH_MAX + QM_ID_MAX + 8], key[QM_PATH_MAX + QM_ID_MAX + 8];
  snprintf(cert, sizeof cert, "%s/%s.crt", t->tls.certs_dir, id);
  snprintf(key, sizeof key, "%s/%s.key", t->tls.certs_dir, id);
  return qm_rpc_tls_configure(t->tls.ca, cert, key, err);
}

static void on_tick(void *arg) {
  struct qm_role *r = arg;
  if (atomic_load(&r->draining) && qm_health_serving(r->health)) qm_health_set_serving(r->health, 0);
}

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "usage: %s --id ID [--topology FILE] [--keys DIR] [--audit-log FILE [--audit-fsync P]]\n"
          "       [--drain-ms N] [--metrics-addr HOST:PORT|auto|off] [--ingress-addr HOST:PORT|auto|off]\n"
          "  --id ID          this instance's id in the topology\n"
          "  --topology FILE  the mesh (default: the built-in topology, deploy/topology.yaml)\n"
          "  --keys DIR       where <provider>.key / <provider>.pub live (overrides keys_dir)\n"
          "  --audit-log FILE the auditor's append-only, hash-chained log (replayed at start)\n"
          "  --audit-fsync P  never | batch (default: every 20 ms) | always (every vote)\n"
          "  --drain-ms N     report NOT_SERVING this long before refusing work (default 200)\n"
          "  --metrics-addr HOST:PORT|auto|off  GET /metrics (auto: the gRPC host, port + %d; default off)\n"
          "  --ingress-addr HOST:PORT|auto|off  fronts: plain-HTTP POST / (auto: port + %d; default off)\n",
          prog, QM_HTTP_METRICS_PORT_OFFSET, QM_HTTP_INGRESS_PORT_OFFSET);
}

static int parse_args(int argc, char **argv, struct qm_role_options *o) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"id", required_argument, NULL, 'i'},
                                        {"keys", required_argument, NULL, 'k'},
                                        {"audit-log", required_argument, NULL, 'a'},
                                        {"drain-ms", required_argument, NULL, 'd'},
                                        {"metrics-addr", required_argument, NULL, 'M'},
                                        {"ingress-addr", required_argument, NULL, 'I'},
                                        {"audit-fsync", required_argument, NULL, 'f'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  o->drain_ms = 200;
  int c;
  while ((c = getopt_long(argc, argv, "t:i:k:a:d:f:M:I:h", longs, NULL)) != -1) {
    switch (c) {
      case 't': o->topology_path = optarg; break;
      case 'i': o->id = optarg; break;
      case 'k': o->keys_dir = optarg; break;
      case 'a': o->audit_log = optarg; break;
      case 'M': o->metrics_addr = optarg; break;
      case 'I': o->ingress_addr = optarg; break;
      case 'f': o->audit_fsync = optarg; break;
      case 'd': {
        char *end;
        errno = 0;
        unsigned long v = strtoul(optarg, &end, 10);
        if (errno || *end || end == optarg || v > 600000) {
          fprintf(stderr, "%s: --drain-ms '%s': not a number of milliseconds up to 600000\n", argv[0], optarg);
          return 2;
        }
        o->drain_ms = (unsigned)v;
        break;
      }
      case 'h': usage(stdout, argv[0]); return -1;
      default: usage(stderr, argv[0]); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
    return 2;
  }
  if (!o->id) {
    fprintf(stderr, "%s: --id is required\n", argv[0]);
    usage(stderr, argv[0]);
    return 2;
  }
  return 0;
}

static int load_topology(struct qm_role *r, const char *prog) {
  struct qm_err err = {0};
  int rc = r->opt.topology_path
               ? qm_topology_load(r->opt.topology_path, r->opt.id, &r->topo, &err)
               : qm_topology_load_buffer("<built-in>", qm_default_topology_yaml,
                                         qm_default_topology_yaml_len, r->opt.id, &r->topo, &err);
  if (!rc) rc = qm_topology_apply_env(r->topo, &err);
  if (rc) {
    fprintf(stderr, "%s: %s\n", prog, err.msg);
    return 1;
  }
  const char *role = qm_topology_role_of(r->topo, r->opt.id);
  if (!role || strcmp(role, r->ops->role) != 0) {
    fprintf(stderr, "%s: %s: id '%s' is %s, not a %s\n", prog, r->topo->source, r->opt.id,
            role ? role : "not in the topology", r->ops->role);
    return 1;
  }
  if (r->opt.keys_dir) {
    size_t n = strlen(r->opt.keys_dir);
    if (n >= sizeof r->topo->keys_dir) {
      fprintf(stderr, "%s: --keys path too long\n", prog);
      return 1;
    }
    memcpy(r->topo->keys_dir, r->opt.keys_dir, n + 1);
  }
  const struct qm_region *reg = qm_topology_find_region_of(r->topo, r->opt.id);
  if (reg) {
    r->region = reg->name;
    r->self = strcmp(reg->front.id, r->opt.id) == 0 ? &reg->front : &reg->hub;
  } else if (strcmp(r->topo->auditor.id, r->opt.id) == 0) {
    r->self = &r->topo->auditor;
  } else {
    r->self = &qm_topology_find_provider(r->topo, r->opt.id)->ep;
  }
  return 0;
}

/* start_http: GET /metrics on every role and POST / on fronts, when asked: on the flags'
 * addresses, or with "auto" on the gRPC host with the port + QM_HTTP_*_PORT_OFFSET. Off by
 * default: a port derived from another port could be one that a later instance of the mesh
 * must bind. A given address that fails is fatal; an "auto" one is reported and left off.
 * Returns 0 or 1. */
static int start_http(struct qm_role *r, const char *prog, struct qm_http **out) {
  char target[QM_HTTP_ADDR_MAX], maddr[QM_HTTP_ADDR_MAX], iaddr[QM_HTTP_ADDR_MAX];
  struct qm_err err = {0};
  int front = strcmp(r->ops->role, "front") == 0;
  if (!front && !qm_http_addr_off(r->opt.ingress_addr)) {
    fprintf(stderr, "%s %s: --ingress-addr: only a front has an ingress\n", prog, r->opt.id);
    return 1;
  }
  qm_http_dial_target(r->self->listen, target, sizeof target);
  struct qm_http_options o = {.role = r->ops->role, .id = r->opt.id, .grpc_target = target,
                              .metrics_addr = r->opt.metrics_addr,
                              .ingress_addr = front ? r->opt.ingress_addr : "off"};
  if (!o.metrics_addr) o.metrics_addr = "off";
  if (front && !o.ingress_addr) o.ingress_addr = "off";
  if (strcmp(o.metrics_addr, "auto") == 0) {
    o.metrics_best_effort = 1;
    o.metrics_addr = qm_http_default_addr(r->self->listen, QM_HTTP_METRICS_PORT_OFFSET, maddr,
                                          sizeof maddr, &err) ? "off" : maddr;
    if (err.code) fprintf(stderr, "%s %s: no default metrics address: %s\n", prog, r->opt.id, err.msg);
  }
  qm_err_clear(&err);
  if (strcmp(o.ingress_addr, "auto") == 0) {
    o.ingress_best_effort = 1;
    o.ingress_addr = qm_http_default_addr(r->self->listen, QM_HTTP_INGRESS_PORT_OFFSET, iaddr,
                                          sizeof iaddr, &err) ? "off" : iaddr;
    if (err.code) fprintf(stderr, "%s %s: no default ingress address: %s\n", prog, r->opt.id, err.msg);
  }
  if (qm_http_start(&o, out, &err)) {
    fprintf(stderr, "%s %s: %s\n", prog, r->opt.id, err.msg);
    return 1;
  }
  if (qm_http_warning(*out)[0]) fprintf(stderr, "%s %s: %s\n", prog, r->opt.id, qm_http_warning(*out));
  if (qm_http_metrics_port(*out) || qm_http_ingress_port(*out))
    fprintf(stderr, "%s %s: http metrics port %u, ingress port %u (0: off)\n", prog, r->opt.id,
            qm_http_metrics_port(*out), qm_http_ingress_port(*out));
  return 0;
}

int qm_role_main(int argc, char **argv, const struct qm_role_ops *ops) {
  struct qm_role *r = calloc(1, sizeof *r);
  if (!r) return 1;
  r->ops = ops;
  int code = parse_args(argc, argv, &r->opt);
  if (code) {
    free(r);
    return code < 0 ? 0 : code;
  }
  qm_rpc_block_signals();
  code = load_topology(r, argv[0]);
  if (code) {
    qm_topology_free(r->topo);
    free(r);
    return code;
  }
  qm_rpc_init();
  struct qm_err err = {0};
  void *state = NULL;
  int rc = qm_role_tls_setup(r->topo, r->opt.id, &err);
  if (!rc) rc = qm_loop_new(&r->loop);
  if (!rc) rc = qm_server_new(r->loop, &r->server);
  if (!rc) rc = qm_health_mount(r->server, &r->health);
  if (!rc) rc = qm_reflection_mount(r->server, &r->reflection);
  if (!rc) rc = qm_loop_add_tick(r->loop, 20, on_tick, r);
  if (rc) qm_err_set(&err, rc, "cannot create the server: %s", strerror(-rc));
  if (!rc) rc = ops->setup(r, &state, &err);
  if (!rc && qm_server_listen(r->server, r->self->listen, &err) < 0) rc = err.code;
  if (!rc) rc = qm_server_start(r->server, &err);
  r->started_ns = qm_mono_ns();
  if (rc) {
    fprintf(stderr, "%s %s: %s\n", argv[0], r->opt.id, err.msg);
    code = 1;
    if (r->loop) {
      qm_loop_stop(r->loop, 0);
      qm_loop_run(r->loop);
    }
    goto cleanup;
  }
  qm_health_set_serving(r->health, 1);
  if (qm_loop_start(r->loop)) {
    fprintf(stderr, "%s %s: cannot start the loop thread\n", argv[0], r->opt.id);
    qm_loop_stop(r->loop, 0);
    qm_loop_run(r->loop);
    code = 1;
    goto cleanup;
  }
  fprintf(stderr, "%s %s (%s) listening on %s, pid %d\n", argv[0], r->opt.id, ops->role,
          r->self->listen, (int)getpid());
  struct qm_http *http = NULL;
  if (start_http(r, argv[0], &http)) {
    qm_loop_stop(r->loop, 0);
    qm_loop_join(r->loop);
    code = 1;
    goto cleanup;
  }
  int sig = 0;
  while (!sig) sig = qm_rpc_wait_signal(1000);
  /* Drain: report NOT_SERVING first, then stop accepting, then finish what is in flight. */
  atomic_store(&r->draining, 1);
  if (r->opt.drain_ms) usleep(r->opt.drain_ms * 1000u);
  qm_http_stop(http); /* its requests in progress end while the role still serves them */
  qm_loop_stop(r->loop, QM_ROLE_GRACE_MS);
  qm_loop_join(r->loop);
  fprintf(stderr, "%s %s: stopped on signal %d\n", argv[0], r->opt.id, sig);
cleanup:
  if (ops->teardown && state) ops->teardown(state);
  qm_server_free(r->server);
  qm_loop_free(r->loop);
  qm_health_free(r->health);
  qm_reflection_free(r->reflection);
  qm_topology_free(r->topo);
  free(r);
  qm_rpc_shutdown();
  return code;
}
