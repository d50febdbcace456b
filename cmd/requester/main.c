/* qmesh-requester: sends the topology's request stream to its fronts (see pkg/requester.c). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "requester.h"
#include "role.h"
#include "rpc.h"
#include "text.h"

int main(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"concurrency", required_argument, NULL, 'c'},
                                        {"batch", required_argument, NULL, 'b'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *path = NULL;
  uint64_t concurrency = 1, batch = 0;
  int c;
  while ((c = getopt_long(argc, argv, "t:c:b:h", longs, NULL)) != -1) {
    switch (c) {
      case 't': path = optarg; break;
      case 'c':
        if (qm_parse_u64(optarg, &concurrency) || concurrency == 0 || concurrency > 4096) {
          fprintf(stderr, "qmesh-requester: --concurrency '%s': expected 1..4096\n", optarg);
          return 2;
        }
        break;
      case 'b':
        if (qm_parse_u64(optarg, &batch) || batch > 4096) {
          fprintf(stderr, "qmesh-requester: --batch '%s': expected 0..4096\n", optarg);
          return 2;
        }
        break;
      case 'h':
        printf("usage: qmesh-requester [--topology FILE] [--concurrency N] [--batch B]\n"
               "--batch: up to B requests per Front/SubmitBatch call (default 0: one Submit each)\n");
        return 0;
      default: return 2;
    }
  }
  struct qm_topology *t = NULL;
  struct qm_err err = {0};
  int rc = path ? qm_topology_load(path, NULL, &t, &err)
                : qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len,
                                          NULL, &t, &err);
  if (!rc) rc = qm_topology_apply_env(t, &err);
  if (!rc) rc = qm_role_tls_setup(t, "requester", &err);
  if (rc) {
    fprintf(stderr, "qmesh-requester: %s\n", err.msg);
    qm_topology_free(t);
    return 1;
  }
  qm_rpc_init();
  struct qm_requester_result res;
  struct qm_requester_opts o = {.topo = t, .concurrency = (unsigned)concurrency,
                                .clock_seed_ns = (uint64_t)qm_now_ns(), .progress = isatty(2),
                                .batch = (unsigned)batch};
  rc = qm_requester_run(&o, &res, &err);
  if (rc) {
    fprintf(stderr, "qmesh-requester: %s\n", err.msg);
  } else {
    printf("sent=%" PRIu64 " accepted=%" PRIu64 " refused=%" PRIu64 " failed=%" PRIu64 " failovers=%" PRIu64
           " resent=%" PRIu64 " retried_busy=%" PRIu64 " calls=%" PRIu64 " byzantine=%s flip_at=%" PRId64 "\n",
           res.sent, res.accepted, res.refused, res.failed, res.failovers, res.resent, res.retried_busy, res.calls,
           res.byz.provider[0] ? res.byz.provider : "none", res.byz.at);
    if (res.failed || res.refused) fprintf(stderr, "qmesh-requester: last error: %s\n", res.last_error);
    qm_requester_result_free(&res);
  }
  qm_rpc_shutdown();
  qm_topology_free(t);
  return rc || res.failed || res.refused ? 1 : 0;
}
