/* qmesh.h: the subcommands of the qmesh tool and the local-mesh helpers they share. */
#ifndef QMESH_CMD_H
#define QMESH_CMD_H

#include "stream.h"
#include "supervisor.h"
#include "topology.h"

int qm_cmd_demo(int argc, char **argv);
int qm_cmd_up(int argc, char **argv);
int qm_cmd_summary(int argc, char **argv);
int qm_cmd_validate(int argc, char **argv);
int qm_cmd_keygen(int argc, char **argv);
int qm_cmd_audit(int argc, char **argv);
int qm_cmd_certs(int argc, char **argv);
int qm_cmd_bench(int argc, char **argv);

#define QM_REQUESTER_ID "requester" /* the certificate identity of requesters and tools */

/* A topology run locally: every role its own process, keys and logs in a private tmpdir. */
struct qm_local_mesh {
  struct qm_topology *topo;
  char tmpdir[256];
  char topology_path[QM_PATH_MAX];
  char keys_dir[QM_PATH_MAX];
  struct qm_supervisor sup;
  struct qm_byzantine byz; /* as drawn for this run */
  int started;
};

/* Set by the signal thread on SIGINT/SIGTERM/SIGHUP; long waits check it. */
extern volatile int qm_interrupted;
/* qm_start_signal_thread: blocks those signals in every thread and waits for them in one. */
void qm_start_signal_thread(void);
/* qm_wait_decided: polls the auditor until it decided every accepted request (no fixed
 * sleep), up to its deadline plus 30 s; counts its Summary calls in |*polls| (may be NULL). */
int qm_wait_decided(const struct qm_topology *t, uint64_t accepted, uint64_t *polls, struct qm_err *err);

/* qm_load_topology_arg: |path| or the built-in default, with the environment applied;
 * prints the error and returns NULL on failure. */
struct qm_topology *qm_load_topology_arg(const char *prog, const char *path);
/* qm_local_mesh_start: resolves the seed and the Byzantine draw (exported to the children's
 * environment so every process agrees), makes keys if the topology names none, starts and
 * waits for every role. |quiet|: role output goes to <tmpdir>/<id>.log. |http|: every role
 * serves /metrics and every front the plain-HTTP ingress, on their gRPC ports + 10000 and
 * + 20000. Prints errors. */
int qm_local_mesh_start(struct qm_local_mesh *m, const char *prog, const char *topology_arg, int quiet,
                        int http);
void qm_local_mesh_stop(struct qm_local_mesh *m);

#endif
