/* requester.h: the client that drives a mesh: the reference's request stream, sent to the
 * region of each index (region 0 before failover_at, region 1 from it), up to
 * |concurrency| in flight, failing over to the next region when a front is unreachable. */
#ifndef QM_REQUESTER_H
#define QM_REQUESTER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"
#include "topology.h"

struct qm_latency;

struct qm_requester_opts {
  const struct qm_topology *topo; /* borrowed */
  unsigned concurrency;           /* in flight, >= 1 */
  uint64_t clock_seed_ns;         /* the seed when the topology names none */
  int progress;                   /* report progress on stderr */
  unsigned timeout_ms;            /* per attempt, default 10000 */
  const volatile int *cancel;     /* stop early when it becomes nonzero (another thread) */
  struct qm_latency *latency;     /* borrowed; NULL = not measured. Each acknowledged request
                                     records its first submit -> acknowledgement time */
  unsigned batch;                 /* 0: one Front/Submit per request; else up to |batch|
                                     requests per Front/SubmitBatch call, gathered while
                                     earlier SubmitBatch calls to the same front are out */
  int64_t *submit_times;          /* NULL, or topology total_requests entries: each request's
                                     first submit (unix ns), indexed by sequence */
  double rate;                    /* 0: closed loop (a request leaves when one finishes); else
                                     open loop: request i is due at start + i / rate seconds,
                                     still at most |concurrency| in flight */
};


struct qm_requester_result {
  struct qm_byzantine byz;        /* as drawn from the seed */
  uint64_t failover_at;
  uint64_t sent;                  /* requests of the stream */
  uint64_t accepted;              /* acknowledged by a front */
  uint64_t refused;               /* refused for good: an error status other than unreachable,
                                     or still RESOURCE_EXHAUSTED after every retry */
  uint64_t failed;                /* no front could be reached */
  uint64_t failovers;             /* moves to the next region after a failure */
  uint64_t resent;                /* attempts beyond the first */
  uint64_t retried_busy;          /* retries after RESOURCE_EXHAUSTED (backpressure) */
  uint64_t calls;                 /* Submit or SubmitBatch calls started */
  uint64_t behind;                /* paced: requests sent more than 1 ms after they were due */
  int64_t lag_max_ns;             /* paced: the most any request was sent after it was due */
  uint64_t *per_region;           /* acknowledged per region (nregions entries, malloc'd) */
  int64_t first_submit_ns, last_ack_ns; /* CLOCK_REALTIME */
  char last_error[256];
};

/* qm_requester_run: blocks until every request was acknowledged, refused or failed. The
 * caller has called qm_rpc_init. Returns 0 (see |res| for the counts) or a negative code
 * with |err| filled when it could not run. Free |res| with qm_requester_result_free. */
int qm_requester_run(const struct qm_requester_opts *o, struct qm_requester_result *res,
                     struct qm_err *err);
void qm_requester_result_free(struct qm_requester_result *res);

#endif
