/* decision_times.c: see decision_times.h. */
#include "decision_times.h"

#include <stdlib.h>
#include <string.h>

void qm_decision_times_record(struct qm_decision_times *t, uint64_t seq, int64_t unix_ns) {
  if (seq >= QM_DECISION_TIMES_MAX) {
    t->dropped++;
    return;
  }
  if (seq >= t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap <= seq) cap *= 2;
    if (cap > QM_DECISION_TIMES_MAX) cap = QM_DECISION_TIMES_MAX;
    int64_t *grown = realloc(t->ns, cap * sizeof *grown);
    if (!grown) {
      t->dropped++;
      return;
    }
    memset(grown + t->cap, 0, (cap - t->cap) * sizeof *grown);
    t->ns = grown;
    t->cap = cap;
  }
  if (!t->ns[seq]) t->ns[seq] = unix_ns ? unix_ns : 1;
}

int64_t qm_decision_times_get(const struct qm_decision_times *t, uint64_t seq) {
  return seq < t->cap ? t->ns[seq] : 0;
}

void qm_decision_times_free(struct qm_decision_times *t) {
  free(t->ns);
  memset(t, 0, sizeof *t);
}
