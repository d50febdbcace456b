/* quorum.h: the auditor's aggregation: k-of-n votes per request, decided when all n are in
 * or at a deadline after the first vote; disagreement per provider; bounded state. Pure
 * logic (no I/O, no clock of its own): the caller passes the time. */
#ifndef QM_QUORUM_H
#define QM_QUORUM_H

#include <stddef.h>
#include <stdint.h>

#include "topology.h"

enum qm_vote_result {
  QM_VOTE_ACCEPTED = 0,
  QM_VOTE_DUPLICATE = 1, /* this (request, provider) vote was counted already */
  QM_VOTE_LATE = 2,      /* the request was decided already */
};

enum qm_request_state { QM_REQ_PENDING = 0, QM_REQ_DECIDED = 1, QM_REQ_INCOMPLETE = 2 };

struct qm_quorum_params {
  size_t nproviders;
  unsigned k;
  int64_t deadline_ns;   /* decide this long after the first vote */
  size_t ndomains;       /* domain names are borrowed and outlive the quorum */
  const char *const *domains;
  size_t pending_max;    /* requests waiting for votes; beyond: -ENOSPC */
  size_t retain_max;     /* decided requests kept for dedup, late votes and lookups */
};

/* One decided request, as handed to the decision hook (in decision order). */
struct qm_decision {
  uint64_t sequence;
  size_t domain;         /* index into params.domains, == ndomains for another domain */
  const int8_t *votes;   /* per provider: 1, 0, or -1 when missing */
  int success;
  int complete;
  int64_t latency_ns;    /* first vote -> decision */
};
typedef void (*qm_decision_fn)(void *arg, const struct qm_decision *d);

struct qm_quorum_provider_stats {
  uint64_t votes;          /* votes counted in decided requests */
  uint64_t disagreements;
  uint64_t initiations;    /* accepted votes with initiated = true */
  uint64_t *initiations_by_domain; /* ndomains + 1 entries (last: other domains) */
};

struct qm_quorum_stats {
  uint64_t decided, incomplete, pending, successes, failures;
  uint64_t accepted, duplicate, late, refused_full, unknown_domain, evicted;
  int64_t first_vote_ns, last_decision_ns;
};

struct qm_request_view {
  uint64_t sequence;
  size_t domain;
  enum qm_request_state state;
  int success;
  const int8_t *votes;     /* nproviders entries */
  const int64_t *vote_ns;  /* when each vote was decided by its provider */
};

struct qm_quorum;

/* qm_quorum_new: 0 or -ENOMEM / -EINVAL; |*out| untouched on failure. */
int qm_quorum_new(const struct qm_quorum_params *p, struct qm_quorum **out);
void qm_quorum_free(struct qm_quorum *q);
void qm_quorum_on_decision(struct qm_quorum *q, qm_decision_fn fn, void *arg);

/* qm_quorum_vote: records |provider|'s vote. Returns a qm_vote_result, or -ENOSPC when
 * pending_max requests are already waiting (the vote is refused, nothing recorded). */
int qm_quorum_vote(struct qm_quorum *q, const uint8_t repr[32], uint64_t sequence,
                   const char *domain, size_t provider, int initiated, int64_t decided_ns,
                   int64_t now_ns);
/* qm_quorum_expire: decides (incomplete) every request whose deadline passed at |now_ns|. */
void qm_quorum_expire(struct qm_quorum *q, int64_t now_ns);

void qm_quorum_stats(const struct qm_quorum *q, struct qm_quorum_stats *out);
const struct qm_quorum_provider_stats *qm_quorum_provider(const struct qm_quorum *q, size_t i);
/* qm_quorum_lookup: 0 and |view| filled (borrowed until the next vote/expire), or -ENOENT. */
int qm_quorum_lookup(const struct qm_quorum *q, const uint8_t repr[32], struct qm_request_view *view);

#endif
