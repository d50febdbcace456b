/* reorder.c: a min-heap of decided requests keyed by sequence. */
#include "reorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct item {
  uint64_t sequence;
  size_t domain;
  int success;
  int8_t *votes;
};

struct qm_reorder {
  size_t width, window, n;
  struct item *heap;
  int8_t *slab; /* window x width vote bytes, slot i belongs to heap position... by ownership */
  int8_t **free_votes;
  size_t nfree;
  uint64_t next;  /* the sequence the detector expects */
  uint64_t skipped, gaps;
  qm_reorder_fn fn;
  void *arg;
};

int qm_reorder_new(size_t width, size_t window, qm_reorder_fn fn, void *arg, struct qm_reorder **out) {
  if (!width || !window) return -EINVAL;
  struct qm_reorder *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->width = width;
  r->window = window;
  r->fn = fn;
  r->arg = arg;
  r->heap = calloc(window + 1, sizeof *r->heap);
  r->slab = calloc(window + 1, width);
  r->free_votes = calloc(window + 1, sizeof *r->free_votes);
  if (!r->heap || !r->slab || !r->free_votes) {
    qm_reorder_free(r);
    return -ENOMEM;
  }
  for (size_t i = 0; i <= window; i++) r->free_votes[r->nfree++] = r->slab + i * width;
  *out = r;
  return 0;
}

void qm_reorder_free(struct qm_reorder *r) {
  if (!r) return;
  free(r->heap);
  free(r->slab);
  free(r->free_votes);
  free(r);
}

static void swap(struct item *a, struct item *b) {
  struct item t = *a;
  *a = *b;
  *b = t;
}

static struct item pop(struct qm_reorder *r) {
  struct item top = r->heap[0];
  r->heap[0] = r->heap[--r->n];
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < r->n && r->heap[l].sequence < r->heap[m].sequence) m = l;
    if (l + 1 < r->n && r->heap[l + 1].sequence < r->heap[m].sequence) m = l + 1;
    if (m == i) break;
    swap(&r->heap[i], &r->heap[m]);
    i = m;
  }
  return top;
}

static void release(struct qm_reorder *r, struct item it) {
  if (it.sequence < r->next) {
    r->skipped++;
  } else {
    r->gaps += it.sequence - r->next;
    r->next = it.sequence + 1;
    r->fn(r->arg, it.sequence, it.domain, it.votes, it.success);
  }
  r->free_votes[r->nfree++] = it.votes;
}

void qm_reorder_push(struct qm_reorder *r, uint64_t sequence, size_t domain, const int8_t *votes, int success) {
  /* Behind the released order, or implausibly far ahead of it (a stray x-request-seq must not
   * make the detector jump past every real request): not fed, counted. */
  if (sequence < r->next || sequence - r->next > QM_REORDER_AHEAD_FACTOR * (uint64_t)r->window) {
    r->skipped++;
    return;
  }
  struct item it = {sequence, domain, success, r->free_votes[--r->nfree]};
  memcpy(it.votes, votes, r->width);
  size_t i = r->n++;
  r->heap[i] = it;
  while (i > 0 && r->heap[(i - 1) / 2].sequence > r->heap[i].sequence) {
    swap(&r->heap[i], &r->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  while (r->n && (r->heap[0].sequence <= r->next || r->n > r->window)) release(r, pop(r));
}

void qm_reorder_flush(struct qm_reorder *r) {
  /* Release what waits behind gaps, but never jump further than one window at a time. */
  while (r->n && r->heap[0].sequence - r->next <= r->window) release(r, pop(r));
}

uint64_t qm_reorder_skipped(const struct qm_reorder *r) { return r->skipped; }
uint64_t qm_reorder_gaps(const struct qm_reorder *r) { return r->gaps; }
size_t qm_reorder_waiting(const struct qm_reorder *r) { return r->n; }
