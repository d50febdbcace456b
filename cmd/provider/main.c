/* qmesh-provider: one provider instance of the topology (see pkg/provider.c). */
#include "roles.h"

int main(int argc, char **argv) { return qm_role_main(argc, argv, &qm_provider_ops); }
