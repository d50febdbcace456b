/* supervisor.h: starts every role of a topology as its own process, waits until each one
 * answers its health check, and stops them all (SIGTERM, then SIGKILL after a grace). */
#ifndef QM_SUPERVISOR_H
#define QM_SUPERVISOR_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "topology.h"

struct qm_child {
  char id[QM_ID_MAX];
  const char *role;
  char dial[QM_ADDR_MAX]; /* where to reach it from this machine */
  pid_t pid;
  int exited;
  int status;
};

struct qm_supervisor {
  struct qm_child *children;
  size_t n;
  char bin_dir[512];
  char topology_path[QM_PATH_MAX];
  char keys_dir[QM_PATH_MAX]; /* "" when the topology names its keys */
  char log_dir[QM_PATH_MAX];  /* "" to inherit stdout/stderr, else <log_dir>/<id>.log */
  char audit_log[QM_PATH_MAX]; /* "" for none: the auditor's --audit-log */
  int http;                    /* pass --metrics-addr auto (and --ingress-addr auto to fronts) */
};

/* qm_supervisor_start: spawns auditor, providers, hubs and fronts (in that order) from
 * |bin_dir|, each with --topology |topology_path| --id ID [--keys keys_dir], output to
 * |log_dir|/<id>.log when |log_dir| is not NULL; then waits until
 * every one reports SERVING. On failure everything started is stopped and |err| names the
 * instance. Children die with this process (PR_SET_PDEATHSIG). */
int qm_supervisor_start(struct qm_supervisor *s, const struct qm_topology *t, const char *bin_dir,
                        const char *topology_path, const char *keys_dir, const char *log_dir,
                        unsigned ready_timeout_ms, struct qm_err *err);
/* qm_supervisor_check: 0 while every child runs, else -ECHILD with the first exit in |err|. */
int qm_supervisor_check(struct qm_supervisor *s, struct qm_err *err);
/* qm_supervisor_stop: SIGTERM to all, wait up to |grace_ms|, SIGKILL the rest, reap. Returns
 * the number of children that did not exit 0 on SIGTERM. Frees the child table. */
int qm_supervisor_stop(struct qm_supervisor *s, unsigned grace_ms);
/* qm_supervisor_dial: the address to reach |listen| from this machine (0.0.0.0 -> 127.0.0.1). */
void qm_supervisor_dial(const char *listen, char *out, size_t cap);
/* qm_supervisor_bin_dir: the directory of the running executable. */
int qm_supervisor_bin_dir(char *out, size_t cap);

#endif
