/* quorum.c: per-request vote tables in a fixed pool with hash chains; decided requests are
 * kept in FIFO order up to retain_max, then forgotten. */
#include "quorum.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

struct entry {
  uint8_t repr[32];
  uint64_t sequence;
  int64_t first_ns;
  uint32_t next;       /* hash chain, or free list */
  uint32_t fifo_next;  /* pending list / decided FIFO */
  uint32_t fifo_prev;
  uint16_t domain;
  uint8_t state;
  uint8_t success;
  uint16_t nvotes;
};

struct list {
  uint32_t head, tail;
  size_t count;
};

struct qm_quorum {
  struct qm_quorum_params p;
  struct entry *pool;
  int8_t *votes;      /* pool size x nproviders */
  int64_t *vote_ns;   /* pool size x nproviders */
  uint32_t *buckets;
  size_t nbuckets, npool;
  uint32_t free_head;
  struct list pending, decided;
  struct qm_quorum_provider_stats *prov;
  uint64_t *init_counts;
  struct qm_quorum_stats st;
  qm_decision_fn hook;
  void *hook_arg;
};

static uint64_t hash_repr(const uint8_t *r) {
  uint64_t h;
  memcpy(&h, r, sizeof h); /* SHA-256 output: already uniform */
  return h;
}

int qm_quorum_new(const struct qm_quorum_params *p, struct qm_quorum **out) {
  if (!p->nproviders || p->k < 1 || p->k > p->nproviders || !p->pending_max || p->ndomains > 65534)
    return -EINVAL;
  struct qm_quorum *q = calloc(1, sizeof *q);
  if (!q) return -ENOMEM;
  q->p = *p;
  q->npool = p->pending_max + p->retain_max + 1;
  q->nbuckets = 1;
  while (q->nbuckets < q->npool * 2) q->nbuckets <<= 1;
  q->pool = calloc(q->npool, sizeof *q->pool);
  q->votes = malloc(q->npool * p->nproviders);
  q->vote_ns = calloc(q->npool * p->nproviders, sizeof *q->vote_ns);
  q->buckets = malloc(q->nbuckets * sizeof *q->buckets);
  q->prov = calloc(p->nproviders, sizeof *q->prov);
  q->init_counts = calloc(p->nproviders * (p->ndomains + 1), sizeof *q->init_counts);
  if (!q->pool || !q->votes || !q->vote_ns || !q->buckets || !q->prov || !q->init_counts) {
    qm_quorum_free(q);
    return -ENOMEM;
  }
  for (size_t i = 0; i < q->nbuckets; i++) q->buckets[i] = NIL;
  for (size_t i = 0; i < q->npool; i++) q->pool[i].next = i + 1 < q->npool ? (uint32_t)(i + 1) : NIL;
  q->free_head = 0;
  q->pending = (struct list){NIL, NIL, 0};
  q->decided = (struct list){NIL, NIL, 0};
  for (size_t i = 0; i < p->nproviders; i++)
    q->prov[i].initiations_by_domain = &q->init_counts[i * (p->ndomains + 1)];
  *out = q;
  return 0;
}

void qm_quorum_free(struct qm_quorum *q) {
  if (!q) return;
  free(q->pool);
  free(q->votes);
  free(q->vote_ns);
  free(q->buckets);
  free(q->prov);
  free(q->init_counts);
  free(q);
}

void qm_quorum_on_decision(struct qm_quorum *q, qm_decision_fn fn, void *arg) {
  q->hook = fn;
  q->hook_arg = arg;
}

static void list_push(struct qm_quorum *q, struct list *l, uint32_t i) {
  q->pool[i].fifo_next = NIL;
  q->pool[i].fifo_prev = l->tail;
  if (l->tail != NIL) q->pool[l->tail].fifo_next = i;
  else l->head = i;
  l->tail = i;
  l->count++;
}

static void list_remove(struct qm_quorum *q, struct list *l, uint32_t i) {
  struct entry *e = &q->pool[i];
  if (e->fifo_prev != NIL) q->pool[e->fifo_prev].fifo_next = e->fifo_next;
  else l->head = e->fifo_next;
  if (e->fifo_next != NIL) q->pool[e->fifo_next].fifo_prev = e->fifo_prev;
  else l->tail = e->fifo_prev;
  l->count--;
}

static uint32_t find(const struct qm_quorum *q, const uint8_t *repr) {
  uint32_t i = q->buckets[hash_repr(repr) & (q->nbuckets - 1)];
  while (i != NIL && memcmp(q->pool[i].repr, repr, 32) != 0) i = q->pool[i].next;
  return i;
}

static void forget_oldest_decided(struct qm_quorum *q) {
  uint32_t i = q->decided.head;
  list_remove(q, &q->decided, i);
  uint32_t *link = &q->buckets[hash_repr(q->pool[i].repr) & (q->nbuckets - 1)];
  while (*link != i) link = &q->pool[*link].next;
  *link = q->pool[i].next;
  q->pool[i].next = q->free_head;
  q->free_head = i;
  q->st.evicted++;
}

static size_t domain_index(const struct qm_quorum *q, const char *domain) {
  for (size_t i = 0; i < q->p.ndomains; i++)
    if (strcmp(q->p.domains[i], domain) == 0) return i;
  return q->p.ndomains;
}

static void decide(struct qm_quorum *q, uint32_t i, int complete, int64_t now_ns) {
  struct entry *e = &q->pool[i];
  int8_t *votes = &q->votes[(size_t)i * q->p.nproviders];
  unsigned yes = 0;
  for (size_t p = 0; p < q->p.nproviders; p++) yes += votes[p] == 1;
  e->success = yes >= q->p.k;
  e->state = complete ? QM_REQ_DECIDED : QM_REQ_INCOMPLETE;
  q->st.decided++;
  if (!complete) q->st.incomplete++;
  if (e->success) q->st.successes++;
  else q->st.failures++;
  for (size_t p = 0; p < q->p.nproviders; p++) {
    if (votes[p] < 0) continue;
    q->prov[p].votes++;
    if ((votes[p] == 1) != e->success) q->prov[p].disagreements++;
  }
  q->st.last_decision_ns = now_ns;
  list_remove(q, &q->pending, i);
  list_push(q, &q->decided, i);
  if (q->hook) {
    struct qm_decision d = {e->sequence, e->domain, votes, e->success, complete, now_ns - e->first_ns};
    q->hook(q->hook_arg, &d);
  }
  while (q->decided.count > q->p.retain_max) forget_oldest_decided(q);
}

int qm_quorum_vote(struct qm_quorum *q, const uint8_t repr[32], uint64_t sequence,
                   const char *domain, size_t provider, int initiated, int64_t decided_ns,
                   int64_t now_ns) {
  if (provider >= q->p.nproviders) return -EINVAL;
  uint32_t i = find(q, repr);
  if (i != NIL && q->pool[i].state != QM_REQ_PENDING) {
    q->st.late++;
    return QM_VOTE_LATE;
  }
  if (i == NIL) {
    if (q->pending.count >= q->p.pending_max) {
      q->st.refused_full++;
      return -ENOSPC;
    }
    if (q->free_head == NIL) forget_oldest_decided(q);
    i = q->free_head;
    struct entry *e = &q->pool[i];
    q->free_head = e->next;
    memset(e, 0, sizeof *e);
    memcpy(e->repr, repr, 32);
    e->sequence = sequence;
    e->first_ns = now_ns;
    size_t d = domain_index(q, domain);
    e->domain = (uint16_t)d;
    memset(&q->votes[(size_t)i * q->p.nproviders], -1, q->p.nproviders);
    uint32_t *bucket = &q->buckets[hash_repr(repr) & (q->nbuckets - 1)];
    e->next = *bucket;
    *bucket = i;
    list_push(q, &q->pending, i);
    if (!q->st.first_vote_ns) q->st.first_vote_ns = now_ns;
  }
  struct entry *e = &q->pool[i];
  int8_t *slot = &q->votes[(size_t)i * q->p.nproviders + provider];
  if (*slot >= 0) {
    q->st.duplicate++;
    return QM_VOTE_DUPLICATE;
  }
  *slot = initiated ? 1 : 0;
  q->vote_ns[(size_t)i * q->p.nproviders + provider] = decided_ns;
  e->nvotes++;
  q->st.accepted++;
  if (e->domain == q->p.ndomains) q->st.unknown_domain++;
  if (initiated) {
    q->prov[provider].initiations++;
    q->prov[provider].initiations_by_domain[e->domain]++;
  }
  if (e->nvotes == q->p.nproviders) decide(q, i, 1, now_ns);
  return QM_VOTE_ACCEPTED;
}

void qm_quorum_expire(struct qm_quorum *q, int64_t now_ns) {
  /* The pending list is in first-vote order: stop at the first one still in time. */
  while (q->pending.head != NIL && now_ns - q->pool[q->pending.head].first_ns >= q->p.deadline_ns)
    decide(q, q->pending.head, 0, now_ns);
}

void qm_quorum_stats(const struct qm_quorum *q, struct qm_quorum_stats *out) {
  *out = q->st;
  out->pending = q->pending.count;
}

const struct qm_quorum_provider_stats *qm_quorum_provider(const struct qm_quorum *q, size_t i) {
  return i < q->p.nproviders ? &q->prov[i] : NULL;
}

int qm_quorum_lookup(const struct qm_quorum *q, const uint8_t repr[32], struct qm_request_view *view) {
  uint32_t i = find(q, repr);
  if (i == NIL) return -ENOENT;
  const struct entry *e = &q->pool[i];
  view->sequence = e->sequence;
  view->domain = e->domain;
  view->state = (enum qm_request_state)e->state;
  view->success = e->success;
  view->votes = &q->votes[(size_t)i * q->p.nproviders];
  view->vote_ns = &q->vote_ns[(size_t)i * q->p.nproviders];
  return 0;
}
