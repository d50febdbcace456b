/* fuzz_descriptors.c: libFuzzer harness for qm_descriptors_load on arbitrary bytes, then the
 * lookups reflection runs: find_file, find_symbol and closure on fixed names and on every
 * indexed file's own name (the first file's included). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "descriptors.h"

#define MAX_FILES 64

static const char *const names[] = {
    "", ".", "qmesh/v1/qmesh.proto", "grpc/health/v1/health.proto", "qmesh.v1.Auditor",
    ".qmesh.v1.Auditor", "qmesh.v1.Auditor.Report", "qmesh.v1.ReportReply.Result",
    "grpc.health.v1.Health.Check", "a", "a.b", ".a.b.c",
};

/* check_closure: |file|'s closure is in range, starts with |file| and has no repeats. */
static void check_closure(const struct qm_descriptors *d, int file, const uint8_t *set, size_t len) {
  int out[MAX_FILES];
  size_t n = qm_descriptors_closure(d, file, out, MAX_FILES);
  if (n > MAX_FILES) abort();
  if (file < 0 && n != 0) abort();
  for (size_t i = 0; i < n; i++) {
    if (out[i] < 0 || out[i] >= MAX_FILES) abort();
    if (i == 0 && out[i] != file) abort();
    for (size_t j = 0; j < i; j++)
      if (out[j] == out[i]) abort();
    size_t flen;
    const uint8_t *bytes = qm_descriptors_file(d, out[i], &flen);
    /* File bytes are served from the borrowed set, unchanged. */
    if (bytes < set || flen > len || bytes + flen > set + len) abort();
    const char *name = qm_descriptors_file_name(d, out[i]);
    if (!name[0] || qm_descriptors_find_file(d, name) < 0) abort();
  }
  /* A short buffer gets a prefix of the same walk. */
  int few[2];
  size_t m = qm_descriptors_closure(d, file, few, 2);
  if (m > 2 || m > n) abort();
  for (size_t i = 0; i < m; i++)
    if (few[i] != out[i]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct qm_descriptors *d = NULL;
  if (qm_descriptors_load(data, size, &d)) {
    if (d) abort(); /* untouched on failure */
    return 0;
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    check_closure(d, qm_descriptors_find_file(d, names[i]), data, size);
    check_closure(d, qm_descriptors_find_symbol(d, names[i]), data, size);
  }
  check_closure(d, -1, data, size);
  check_closure(d, MAX_FILES + 1, data, size);
  /* Every file the index holds (closure of an index past the last file is empty), by its
   * own name: the name resolves to that file or an earlier one of the same name. */
  int one[1];
  for (int f = 0; f < MAX_FILES && qm_descriptors_closure(d, f, one, 1) == 1; f++) {
    const char *name = qm_descriptors_file_name(d, f);
    int found = qm_descriptors_find_file(d, name);
    if (found < 0 || found > f) abort();
    (void)qm_descriptors_find_symbol(d, name);
    check_closure(d, f, data, size);
  }
  qm_descriptors_free(d);
  return 0;
}
