/* stream.c: the requester's request stream, equal to the reference demo's for a seed. */
#include "stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* int(x) of a non-negative double, as Python truncates it, clamped to int64. */
static int64_t py_trunc(double x) {
  if (x >= 9223372036854775807.0)
    return INT64_MAX;
  return (int64_t)x;
}

/* pick_byzantine: the reference's draws, in its order (provider, then index). */
static int pick_byzantine(struct qm_stream *s, struct qm_err *err) {
  const struct qm_topology *t = s->topo;
  const char *pid = t->byzantine_provider;

  s->byz.provider[0] = '\0';
  if (strcmp(pid, "none") != 0) {
    size_t i;
    for (i = 0; i < t->nproviders; i++)
      if (strcmp(t->providers[i].ep.id, pid) == 0)
        break;
    if (i == t->nproviders) { /* "" or unknown: random.choice(list(providers)) */
      if (t->nproviders == 0)
        return qm_err_set(err, -EINVAL, "%s: no providers to draw the Byzantine one from",
                          t->source);
      i = (size_t)qm_pyrandom_randbelow(&s->rng, t->nproviders);
    }
    snprintf(s->byz.provider, sizeof s->byz.provider, "%s", t->providers[i].ep.id);
  }

  if (t->byzantine_at >= 0) {
    s->byz.at = t->byzantine_at;
  } else {
    /* lo = max(1, int(N*0.55)); hi = max(lo+1, int(N*0.90)); the products in double. */
    double n = (double)t->total_requests;
    int64_t lo = py_trunc(n * 0.55), hi = py_trunc(n * 0.90);
    if (lo < 1)
      lo = 1;
    if (lo == INT64_MAX)
      lo = INT64_MAX - 1;
    if (hi < lo + 1)
      hi = lo + 1;
    s->byz.at = qm_pyrandom_randint(&s->rng, lo, hi);
  }
  return 0;
}

int qm_stream_init(struct qm_stream *s, const struct qm_topology *topo, uint64_t clock_seed_ns,
                   struct qm_err *err) {
  struct qm_stream tmp;
  int rc;

  memset(&tmp, 0, sizeof tmp);
  tmp.topo = topo;
  if (topo->ndomains == 0)
    return qm_err_set(err, -EINVAL, "%s: no domains to draw requests from", topo->source);
  if (topo->random_seed[0] == '\0') {
    qm_pyrandom_seed_u64(&tmp.rng, clock_seed_ns); /* random.seed(time.time_ns()) */
  } else {
    rc = qm_pyrandom_seed_text(&tmp.rng, topo->random_seed, err);
    if (rc)
      return rc;
  }
  rc = pick_byzantine(&tmp, err);
  if (rc)
    return rc;
  *s = tmp;
  return 0;
}

void qm_stream_next(struct qm_stream *s, struct qm_stream_item *item) {
  const struct qm_topology *t = s->topo;
  int n;

  item->index = s->next_index++;
  item->context = qm_pyrandom_random(&s->rng) > 0.1 ? t->expected_context : "SPOOF";
  item->domain = t->domains[qm_pyrandom_randbelow(&s->rng, t->ndomains)].name;
  n = snprintf(item->payload, sizeof item->payload, "{\"i\":%llu}",
               (unsigned long long)item->index);
  item->payload_len = (size_t)n; /* at most 26 bytes: fits QM_STREAM_PAYLOAD_MAX */
}
