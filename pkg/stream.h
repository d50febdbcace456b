/* stream.h: the requester's request stream, equal to the reference demo's for a seed. */
#ifndef QM_STREAM_H
#define QM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "pyrandom.h"
#include "topology.h"

#define QM_STREAM_PAYLOAD_MAX 32

/* The Byzantine settings after drawing: provider "" when there is none. */
struct qm_byzantine {
  char provider[QM_ID_MAX];
  int64_t at;
};

struct qm_stream {
  struct qm_pyrandom rng;
  const struct qm_topology *topo; /* borrowed */
  uint64_t next_index;
  struct qm_byzantine byz;
};

struct qm_stream_item {
  uint64_t index;
  const char *context;       /* expected_context or "SPOOF"; borrowed from the topology */
  const char *domain;        /* borrowed from the topology */
  char payload[QM_STREAM_PAYLOAD_MAX]; /* {"i":<index>} */
  size_t payload_len;
};

/* qm_stream_init: seeds from topo->random_seed (or |clock_seed_ns| when it is empty, as
 * the reference's time.time_ns()), then draws what the topology leaves open, in the
 * reference's order: the Byzantine provider (choice over providers, unless configured or
 * "none"), then its index (randint(max(1,int(0.55N)), max(lo+1,int(0.90N))) unless
 * configured; still drawn for "none" so the stream stays the same). Returns 0 or a negative
 * code with |err| filled (bad seed text). |topo| is borrowed and must outlive |s|. */
int qm_stream_init(struct qm_stream *s, const struct qm_topology *topo, uint64_t clock_seed_ns,
                   struct qm_err *err);

/* qm_stream_next: the next request (ctx from random() > 0.1, domain = choice(domains)). */
void qm_stream_next(struct qm_stream *s, struct qm_stream_item *item);

#endif
