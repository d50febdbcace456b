/* qmesh: run, inspect and check a quorum audit mesh. A table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "qmesh.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"demo", qm_cmd_demo, "start every role, run the requester, print the summary, stop"},
    {"up", qm_cmd_up, "run every role in the foreground until SIGINT/SIGTERM"},
    {"summary", qm_cmd_summary, "ask the running auditor (and hubs, providers) for the summary"},
    {"validate", qm_cmd_validate, "check a topology file"},
    {"keygen", qm_cmd_keygen, "make Ed25519 signing keys for every provider"},
    {"certs", qm_cmd_certs, "make a CA and a certificate per instance for mutual TLS"},
    {"bench", qm_cmd_bench, "run the mesh under load: requests/s, latency, CPU per process, beside a bare echo"},
    {"audit", qm_cmd_audit, "audit verify LOG: check an auditor's log (chain and signatures) offline"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: qmesh COMMAND [options]   (qmesh COMMAND --help for its options)\n\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "qmesh: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
