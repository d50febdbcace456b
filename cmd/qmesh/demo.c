/* demo.c: `qmesh demo` (the whole story in one command) and `qmesh up` (roles only). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qmesh.h"
#include "requester.h"
#include "rpc.h"
#include "summary.h"
#include "text.h"

static int parse_uint(const char *prog, const char *flag, const char *v, unsigned max, unsigned *out) {
  uint64_t x;
  if (qm_parse_u64(v, &x) || x == 0 || x > max) {
    fprintf(stderr, "%s: %s '%s': expected a whole number from 1 to %u\n", prog, flag, v, max);
    return -1;
  }
  *out = (unsigned)x;
  return 0;
}

int qm_cmd_demo(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"concurrency", required_argument, NULL, 'c'},
                                        {"batch", required_argument, NULL, 'b'},
                                        {"json", no_argument, NULL, 'j'},
                                        {"plot", required_argument, NULL, 'p'},
                                        {"http", no_argument, NULL, 'H'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL, *plot = NULL;
  unsigned concurrency = 1, batch = 0;
  int json = 0, http = 0, c;
  while ((c = getopt_long(argc, argv, "t:c:b:jp:Hh", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'c':
        if (parse_uint("qmesh demo", "--concurrency", optarg, 4096, &concurrency)) return 2;
        break;
      case 'b':
        if (parse_uint("qmesh demo", "--batch", optarg, 4096, &batch)) return 2;
        break;
      case 'j': json = 1; break;
      case 'p': plot = optarg; break;
      case 'H': http = 1; break;
      case 'h':
        printf("usage: qmesh demo [--topology FILE] [--concurrency N] [--batch B] [--json] [--plot FILE.svg]\n"
               "                  [--http]\n"
               "Starts every role of the topology as its own process, sends the requester's stream,\n"
               "waits until the auditor decided every request, prints the summary and stops.\n"
               "--batch sends up to B requests per Front/SubmitBatch call (default 0: one Submit each).\n"
               "--plot writes each provider's drift statistic over the request index as SVG.\n"
               "--http serves /metrics on every role (gRPC port + 10000) and POST / on fronts (+ 20000).\n"
               "Environment overrides: TOTAL_REQUESTS FAILOVER_AT QUORUM_THRESHOLD EXPECTED_CONTEXT\n"
               "RANDOM_SEED BYZANTINE_PROVIDER BYZANTINE_AT WORKER_COUNT POST_QUEUE_MAX <ID>_PORT\n");
        return 0;
      default: return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "qmesh demo: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  qm_start_signal_thread();
  struct qm_local_mesh m;
  if (qm_local_mesh_start(&m, "qmesh demo", topology, 1, http)) return 1;
  struct qm_err err = {0};
  struct qm_requester_result res;
  struct qm_requester_opts ro = {.topo = m.topo, .concurrency = concurrency, .progress = isatty(2),
                                 .cancel = &qm_interrupted, .batch = batch};
  int code = 0;
  if (qm_requester_run(&ro, &res, &err)) {
    fprintf(stderr, "qmesh demo: requester: %s\n", err.msg);
    qm_local_mesh_stop(&m);
    return 1;
  }
  if (res.failed || res.refused)
    fprintf(stderr, "qmesh demo: %" PRIu64 " requests failed, %" PRIu64 " refused (last: %s)\n", res.failed,
            res.refused, res.last_error);
  struct qm_report rep;
  memset(&rep, 0, sizeof rep);
  if (qm_wait_decided(m.topo, res.accepted, NULL, &err) || qm_report_collect(&rep, m.topo, &err)) {
    fprintf(stderr, "qmesh demo: %s\n", err.msg);
    code = 1;
  } else {
    rep.req = &res;
    rep.send_ms = res.last_ack_ns > res.first_submit_ns ? (double)(res.last_ack_ns - res.first_submit_ns) / 1e6 : 0;
    snprintf(rep.byz_provider, sizeof rep.byz_provider, "%s", res.byz.provider[0] ? res.byz.provider : "none");
    rep.byz_at = res.byz.at;
    rep.e2e_seconds = rep.last_decision_ns > res.first_submit_ns
                          ? (double)(rep.last_decision_ns - res.first_submit_ns) / 1e9 : 0;
    rep.e2e_rate = rep.e2e_seconds > 0 ? (double)rep.decided / rep.e2e_seconds : 0;
    struct qm_text out;
    qm_text_init(&out, 1 << 20);
    if (json) qm_report_json(&rep, &out);
    else qm_report_text(&rep, &out);
    fwrite(out.buf, 1, out.len, stdout);
    fflush(stdout);
    qm_text_free(&out);
    if (plot && qm_report_plot(m.topo, plot, res.byz.provider[0] ? res.byz.at : -1,
                               res.byz.provider[0] ? res.byz.provider : NULL, &err)) {
      fprintf(stderr, "qmesh demo: %s\n", err.msg);
      code = 1;
    }
    if (res.failed || res.refused || qm_interrupted) code = 1;
  }
  qm_requester_result_free(&res);
  qm_local_mesh_stop(&m);
  return code;
}

int qm_cmd_up(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"http", no_argument, NULL, 'H'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL;
  int c, http = 0;
  while ((c = getopt_long(argc, argv, "t:Hh", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'H': http = 1; break;
      case 'h':
        printf("usage: qmesh up [--topology FILE] [--http]\nRuns every role until SIGINT/SIGTERM.\n"
               "--http serves /metrics on every role (gRPC port + 10000) and POST / on fronts (+ 20000).\n");
        return 0;
      default: return 2;
    }
  }
  qm_rpc_block_signals();
  struct qm_local_mesh m;
  if (qm_local_mesh_start(&m, "qmesh up", topology, 0, http)) return 1;
  for (size_t i = 0; i < m.sup.n; i++)
    printf("%-12s %-9s %-22s pid %d\n", m.sup.children[i].id, m.sup.children[i].role, m.sup.children[i].dial,
           (int)m.sup.children[i].pid);
  printf("mesh up (seed %s, Byzantine %s at %" PRId64 "); SIGINT or SIGTERM stops it\n", m.topo->random_seed,
         m.byz.provider[0] ? m.byz.provider : "none", m.byz.at);
  fflush(stdout);
  struct qm_err err = {0};
  int code = 0;
  while (!qm_rpc_wait_signal(200)) {
    if (qm_supervisor_check(&m.sup, &err)) {
      fprintf(stderr, "qmesh up: %s; stopping the mesh\n", err.msg);
      code = 1;
      break;
    }
  }
  qm_local_mesh_stop(&m);
  return code;
}
