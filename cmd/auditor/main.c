/* qmesh-auditor: one auditor instance of the topology (see pkg/auditor.c). */
#include "roles.h"

int main(int argc, char **argv) { return qm_role_main(argc, argv, &qm_auditor_ops); }
