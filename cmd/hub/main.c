/* qmesh-hub: one hub instance of the topology (see pkg/hub.c). */
#include "roles.h"

int main(int argc, char **argv) { return qm_role_main(argc, argv, &qm_hub_ops); }
