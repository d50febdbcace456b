/* fuzz_topology.c: libFuzzer harness for the topology loader, with and without an id. */
#include <stddef.h>
#include <stdint.h>

#include "topology.h"

/* exercise: the lookups a role runs on a loaded topology. */
static void exercise(const struct qm_topology *t) {
  size_t i;
  (void)qm_topology_threshold(t, "payments");
  (void)qm_topology_threshold(t, "nope");
  for (i = 0; i < t->nproviders; i++) (void)qm_topology_role_of(t, t->providers[i].ep.id);
  for (i = 0; i < t->nregions; i++) (void)qm_topology_find_region_of(t, t->regions[i].hub.id);
  (void)qm_topology_role_of(t, t->auditor.id);
  (void)qm_topology_validate(t, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const ids[] = {"PROVIDER_A", NULL};
  size_t i;
  for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    struct qm_topology *t = NULL;
    struct qm_err err;
    if (qm_topology_load_buffer("fuzz.yaml", (const char *)data, size, ids[i], &t, &err) == 0) {
      exercise(t);
      qm_topology_free(t);
    }
  }
  return 0;
}
