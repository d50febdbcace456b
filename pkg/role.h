/* role.h: what every role process shares: flags, topology, one loop and one server with
 * health, reflection and Stats, signal handling and a graceful drain. */
#ifndef QM_ROLE_H
#define QM_ROLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hist.h"
#include "rpc.h"
#include "topology.h"

#define QM_ROLE_COUNTERS_MAX 48
#define QM_ROLE_UPSTREAM_MAX 64

struct qm_counter {
  const char *name; /* static string */
  uint64_t value;
};

struct qm_role;

struct qm_role_ops {
  const char *role;  /* "front", "hub", "provider", "auditor": must match the topology */
  /* setup: registers the role's methods on qm_role_server(r), opens its channels and
   * returns the role's state in |*state|. */
  int (*setup)(struct qm_role *r, void **state, struct qm_err *err);
  /* teardown: after the loop stopped; frees |state|. */
  void (*teardown)(void *state);
};

struct qm_role_options {
  const char *topology_path; /* NULL: the built-in default */
  const char *id;
  const char *keys_dir;      /* --keys: overrides the topology's keys_dir */
  const char *audit_log;     /* --audit-log (auditor) */
  const char *audit_fsync;   /* --audit-fsync never|batch|always (auditor) */
  unsigned drain_ms;         /* NOT_SERVING this long before the server stops accepting */
  const char *metrics_addr;  /* --metrics-addr HOST:PORT|auto|off; NULL: off; auto: gRPC port + 10000 */
  const char *ingress_addr;  /* --ingress-addr HOST:PORT|auto|off (fronts); auto: gRPC port + 20000 */
};

/* qm_role_main: parses argv, runs the role until SIGINT/SIGTERM, returns the exit code. */
int qm_role_main(int argc, char **argv, const struct qm_role_ops *ops);

/* Accessors for role implementations (valid during setup and on the loop thread). */
struct qm_loop *qm_role_loop(struct qm_role *r);
struct qm_server *qm_role_server(struct qm_role *r);
const struct qm_topology *qm_role_topology(const struct qm_role *r);
const char *qm_role_id(const struct qm_role *r);
const struct qm_role_options *qm_role_options(const struct qm_role *r);

/* qm_role_counter: a named counter of the role (created on first use, bounded); returns a
 * pointer that stays valid for the process' life, or NULL when the table is full. */
uint64_t *qm_role_counter(struct qm_role *r, const char *name);
/* qm_role_histogram: a named latency histogram of the role (created on first use, bounded;
 * NULL when the table is full); shown by Stats and /metrics. */
struct qm_hist *qm_role_histogram(struct qm_role *r, const char *name);
/* qm_role_add_gauge: a level read when Stats is asked (|fn(arg)|, on the loop thread). */
typedef int64_t (*qm_gauge_fn)(void *arg);
int qm_role_add_gauge(struct qm_role *r, const char *name, qm_gauge_fn fn, void *arg);

/* qm_role_add_upstream: an address this role sends to, shown by Stats. */
void qm_role_add_upstream(struct qm_role *r, const char *addr);
/* qm_role_peer_allowed: with mutual TLS, 1 when the caller's certificate identity is one of
 * |allowed| (|n| ids), else 0 with the identity (or "unauthenticated") in |peer|; always 1
 * without TLS. */
int qm_role_peer_allowed(struct qm_call *call, const char *const *allowed, size_t n, char *peer, size_t cap);
/* qm_role_tls_setup: configures the process' mutual TLS from the topology's tls section for
 * identity |id| (<certs_dir>/<id>.crt and .key); nothing when the topology has no tls. */
int qm_role_tls_setup(const struct qm_topology *t, const char *id, struct qm_err *err);

/* qm_role_add_stats_method: registers "/qmesh.v1.<Service>/Stats" answering RoleStats. */
int qm_role_add_stats_method(struct qm_role *r, const char *path);

#endif
