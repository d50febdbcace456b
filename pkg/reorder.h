/* reorder.h: puts decisions back into request order for the drift detector. Decisions come
 * in completion order (concurrency, retries); the detector needs ascending sequences. Items
 * wait in a bounded min-heap; a gap older than |window| items is skipped (counted). */
#ifndef QM_REORDER_H
#define QM_REORDER_H

#include <stddef.h>
#include <stdint.h>

struct qm_reorder;

/* An item handed out in order: |votes| has the width given at creation. */
typedef void (*qm_reorder_fn)(void *arg, uint64_t sequence, size_t domain, const int8_t *votes, int success);

/* qm_reorder_new: |width| vote bytes per item, at most |window| items waiting. */
int qm_reorder_new(size_t width, size_t window, qm_reorder_fn fn, void *arg, struct qm_reorder **out);
void qm_reorder_free(struct qm_reorder *r);
/* qm_reorder_push: one decided request; releases what is now in order. */
void qm_reorder_push(struct qm_reorder *r, uint64_t sequence, size_t domain, const int8_t *votes, int success);
#define QM_REORDER_AHEAD_FACTOR 16 /* sequences further ahead than 16 windows are skipped */

/* qm_reorder_flush: releases what waits, in order, across gaps of at most one window (the
 * run is over, or quiet); items further ahead keep waiting for the sequences before them. */
void qm_reorder_flush(struct qm_reorder *r);
uint64_t qm_reorder_skipped(const struct qm_reorder *r); /* behind the released order: dropped */
uint64_t qm_reorder_gaps(const struct qm_reorder *r);    /* sequences never seen, jumped over */
size_t qm_reorder_waiting(const struct qm_reorder *r);

#endif
