/* qmesh-front: one front instance of the topology (see pkg/front.c). */
#include "roles.h"

int main(int argc, char **argv) { return qm_role_main(argc, argv, &qm_front_ops); }
