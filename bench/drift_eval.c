/* drift_eval.c: evaluates the auditor's drift detector (pkg/drift.h) on the reference stream.
 *
 * For seeds 1..S at N requests with the Byzantine provider and its flip index drawn from the
 * seed (BYZANTINE_PROVIDER "" and BYZANTINE_AT unset: a random provider, flip index in
 * [0.55N, 0.90N]), then for the same seeds with BYZANTINE_PROVIDER=none, it replays the votes
 * the providers would cast (pkg/stream.h, pkg/decision.h), feeds them to the detector as the
 * auditor does and prints one row per seed and the totals against the targets of issue 7.
 * Exits 1 when a target is missed, 2 on a usage or setup error.
 *
 * Usage: drift_eval [--seeds S] [--first-seed F] [--requests N] [--threshold H]
 *                   [--tolerance T] [--plot FILE.svg] [--quiet]
 * (seeds F..F+S-1, default 1..50; --quiet prints only the rows that are not plain hits;
 * --plot draws the first seed's statistics with pkg/plot_svg). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "decision.h"
#include "drift.h"
#include "err.h"
#include "plot_svg.h"
#include "stream.h"
#include "topology.h"

#define NPROV 3
#define NDOM 3

/* Targets of issue 7. */
#define TARGET_HITS 48         /* of 50 seeds: the right provider named */
#define TARGET_LOCATE 60       /* every hit: |estimated - true flip| <= 60 requests */
#define TARGET_MEDIAN_DELAY 150 /* median of alarm - flip over hits */

struct run {
  char true_provider[QM_ID_MAX]; /* "" for none */
  int64_t true_flip;
  int named;                     /* provider index with the earliest alarm, -1 for none */
  uint64_t change_at, alarm_at;
  int alarms;                    /* providers suspected */
  double peak[NPROV];
};

static const char *const ids[NPROV] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};
static const char *const secrets[NPROV] = {"A_KEY", "B_KEY", "C_KEY"};
static const char *const domains[NDOM] = {"payments", "identity", "storage"};
static const double thresholds[NDOM] = {0.55, 0.60, 0.50};

static void topology_fill(struct qm_topology *t, unsigned seed, uint64_t n, const char *byz) {
  memset(t, 0, sizeof *t);
  snprintf(t->source, sizeof t->source, "<drift_eval>");
  t->nproviders = NPROV;
  for (size_t i = 0; i < NPROV; i++) {
    snprintf(t->providers[i].ep.id, sizeof t->providers[i].ep.id, "%s", ids[i]);
    t->providers[i].score_secret_len = strlen(secrets[i]);
    memcpy(t->providers[i].score_secret, secrets[i], t->providers[i].score_secret_len);
  }
  t->quorum_threshold = 2;
  t->ndomains = NDOM;
  for (size_t k = 0; k < NDOM; k++) {
    snprintf(t->domains[k].name, sizeof t->domains[k].name, "%s", domains[k]);
    t->domains[k].threshold = thresholds[k];
  }
  t->default_threshold = 0.60;
  snprintf(t->expected_context, sizeof t->expected_context, "CTX_ALPHA");
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", byz);
  t->byzantine_at = -1;
  t->total_requests = n;
  t->failover_at = -1;
  snprintf(t->random_seed, sizeof t->random_seed, "%u", seed);
}

/* simulate: replays |seed| through a detector with |params|; fills |r|. 0 or negative.
 * With |keep|, the detector is handed over in |*keep| (the caller frees it). */
static int simulate(struct qm_topology *t, unsigned seed, uint64_t n, const char *byz,
                    const struct qm_drift_params *params, struct run *r,
                    struct qm_drift **keep) {
  struct qm_stream s;
  struct qm_err err;
  struct qm_drift *d = NULL;
  int rc;

  topology_fill(t, seed, n, byz);
  qm_err_clear(&err);
  rc = qm_stream_init(&s, t, 0, &err);
  if (rc) {
    fprintf(stderr, "drift_eval: seed %u: %s\n", seed, err.msg);
    return rc;
  }
  rc = qm_drift_new(NPROV, NDOM, params, &d);
  if (rc)
    return rc;
  memset(r, 0, sizeof *r);
  snprintf(r->true_provider, sizeof r->true_provider, "%s", s.byz.provider);
  r->true_flip = s.byz.provider[0] ? s.byz.at : -1;

  for (uint64_t i = 0; i < n; i++) {
    struct qm_stream_item it;
    uint8_t repr[32];
    unsigned int repr_len = 0;
    int8_t votes[NPROV];
    size_t dom = NDOM;
    int yes = 0;

    qm_stream_next(&s, &it);
    if (!EVP_Digest(it.payload, it.payload_len, repr, &repr_len, EVP_sha256(), NULL)) {
      rc = -EIO;
      goto out;
    }
    for (size_t k = 0; k < NDOM; k++)
      if (strcmp(it.domain, domains[k]) == 0)
        dom = k;
    for (size_t p = 0; p < NPROV; p++) {
      const struct qm_provider *pv = &t->providers[p];
      double score = qm_decision_score(pv->score_secret, pv->score_secret_len, pv->ep.id,
                                       it.domain, repr, it.context, strlen(it.context),
                                       t->expected_context);
      double threshold = dom < NDOM ? thresholds[dom] : t->default_threshold;
      if (score < 0.0) {
        rc = -EIO;
        goto out;
      }
      votes[p] = (int8_t)qm_decision_initiated(score, threshold,
                                               strcmp(pv->ep.id, s.byz.provider) == 0,
                                               it.index, s.byz.at);
      yes += votes[p];
    }
    qm_drift_observe(d, it.index, dom, votes, yes >= (int)t->quorum_threshold);
  }

  r->named = -1;
  for (size_t p = 0; p < NPROV; p++) {
    struct qm_drift_report rep;
    qm_drift_report(d, p, &rep);
    r->peak[p] = rep.peak;
    if (!rep.suspected)
      continue;
    r->alarms++;
    if (r->named < 0 || rep.alarm_at < r->alarm_at ||
        (rep.alarm_at == r->alarm_at && rep.peak > r->peak[r->named])) {
      r->named = (int)p;
      r->alarm_at = rep.alarm_at;
      r->change_at = rep.change_at;
    }
  }
out:
  if (keep && rc == 0)
    *keep = d;
  else
    qm_drift_free(d);
  return rc;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int parse_num(const char *flag, const char *text, double lo, double hi, double *out) {
  char *end = NULL;
  double v;
  errno = 0;
  v = strtod(text, &end);
  if (errno || end == text || *end || v < lo || v > hi) {
    fprintf(stderr, "drift_eval: %s: bad value '%s' (want %g..%g)\n", flag, text, lo, hi);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  struct qm_drift_params params;
  struct qm_topology *t = NULL;
  unsigned nseeds = 50, first = 1;
  const char *plot = NULL;
  struct qm_drift *plotted = NULL;
  uint64_t n = 2000;
  int quiet = 0, status = 2;
  int hits = 0, located = 0, early = 0, none_alarms = 0, none_seeds_alarmed = 0;
  int64_t *delays = NULL;
  int64_t worst_locate = 0, median = -1;
  double none_peak = 0.0;
  size_t ndelays = 0;

  qm_drift_params_default(&params);
  for (int i = 1; i < argc; i++) {
    double v;
    const char *a = argv[i];
    if (strcmp(a, "--quiet") == 0) {
      quiet = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "usage: drift_eval [--seeds S] [--first-seed F] [--requests N] "
                      "[--threshold H] [--tolerance T] [--plot FILE.svg] [--quiet]\n");
      return 2;
    }
    i++;
    if (strcmp(a, "--plot") == 0)
      plot = argv[i];
    else if (strcmp(a, "--seeds") == 0 && parse_num(a, argv[i], 1, 100000, &v) == 0)
      nseeds = (unsigned)v;
    else if (strcmp(a, "--first-seed") == 0 && parse_num(a, argv[i], 0, 4e9, &v) == 0)
      first = (unsigned)v;
    else if (strcmp(a, "--requests") == 0 && parse_num(a, argv[i], 20, 1e7, &v) == 0)
      n = (uint64_t)v;
    else if (strcmp(a, "--threshold") == 0 && parse_num(a, argv[i], 0.1, 1e6, &v) == 0)
      params.threshold = v;
    else if (strcmp(a, "--tolerance") == 0 && parse_num(a, argv[i], 0, 1e7, &v) == 0)
      params.tolerance = (uint64_t)v;
    else {
      fprintf(stderr, "drift_eval: unknown or bad option '%s'\n", a);
      return 2;
    }
  }

  t = calloc(1, sizeof *t);
  delays = calloc(nseeds, sizeof *delays);
  if (!t || !delays)
    goto done;

  printf("drift_eval: seeds %u..%u, N=%llu, threshold %.2f nats, tolerance %llu, window %zu\n\n",
         first, first + nseeds - 1, (unsigned long long)n, params.threshold,
         (unsigned long long)params.tolerance, params.window);
  printf("Byzantine provider and flip drawn from the seed:\n");
  printf("%4s  %-10s  %5s  %-10s  %9s  %6s  %5s  %5s  %s\n", "seed", "true", "flip", "named",
         "estimated", "alarm", "delay", "error", "result");
  for (unsigned seed = first; seed - first < nseeds; seed++) {
    struct run r;
    char named[QM_ID_MAX];
    const char *result;
    int64_t error = 0, delay = 0;

    if (simulate(t, seed, n, "", &params, &r, plot && seed == first ? &plotted : NULL))
      goto done;
    if (plot && seed == first) {
      struct qm_err err;
      if (qm_plot_svg_write(plot, plotted, ids, NPROV, r.true_flip, r.true_provider, &err)) {
        fprintf(stderr, "drift_eval: %s\n", err.msg);
        goto done;
      }
    }
    snprintf(named, sizeof named, "%s", r.named >= 0 ? ids[r.named] : "-");
    if (r.named < 0 || strcmp(named, r.true_provider) != 0) {
      result = "MISS";
    } else {
      hits++;
      error = (int64_t)r.change_at - r.true_flip;
      delay = (int64_t)r.alarm_at - r.true_flip;
      if (delay < 0)
        early++;
      else
        delays[ndelays++] = delay;
      if (llabs(error) > worst_locate)
        worst_locate = llabs(error);
      if (llabs(error) <= TARGET_LOCATE && delay >= 0) {
        located++;
        result = "hit";
      } else {
        result = delay < 0 ? "hit (alarm before flip)" : "hit (located >60 off)";
      }
    }
    if (!quiet || strcmp(result, "hit") != 0) {
      if (r.named >= 0)
        printf("%4u  %-10s  %5lld  %-10s  %9llu  %6llu  %5lld  %+5lld  %s\n", seed,
               r.true_provider, (long long)r.true_flip, named,
               (unsigned long long)r.change_at, (unsigned long long)r.alarm_at,
               (long long)delay, (long long)error, result);
      else
        printf("%4u  %-10s  %5lld  %-10s  %9s  %6s  %5s  %5s  %s\n", seed, r.true_provider,
               (long long)r.true_flip, "-", "-", "-", "-", "-", result);
    }
  }
  if (ndelays) {
    qsort(delays, ndelays, sizeof delays[0], cmp_i64);
    median = ndelays % 2 ? delays[ndelays / 2]
                         : (delays[ndelays / 2 - 1] + delays[ndelays / 2]) / 2;
  }

  printf("\nBYZANTINE_PROVIDER=none (same seeds):\n");
  printf("%4s  %s\n", "seed", "providers suspected (peak statistic A/B/C)");
  for (unsigned seed = first; seed - first < nseeds; seed++) {
    struct run r;
    if (simulate(t, seed, n, "none", &params, &r, NULL))
      goto done;
    none_alarms += r.alarms;
    none_seeds_alarmed += r.alarms > 0;
    for (size_t p = 0; p < NPROV; p++)
      if (r.peak[p] > none_peak)
        none_peak = r.peak[p];
    if (!quiet || r.alarms)
      printf("%4u  %d  (%.2f / %.2f / %.2f)\n", seed, r.alarms, r.peak[0], r.peak[1],
             r.peak[2]);
  }

  {
    int ok_hits = (double)hits >= (double)TARGET_HITS / 50.0 * nseeds; /* 48 of 50, scaled */
    int ok_locate = located == hits;
    int ok_delay = median >= 0 && median <= TARGET_MEDIAN_DELAY;
    int ok_none = none_alarms == 0;
    char target[64];
    printf("\n%-40s %-16s %s\n", "measure", "value", "target");
    snprintf(target, sizeof target, "%d of %u", hits, nseeds);
    printf("%-40s %-16s >= %g of %u %s\n", "right provider named", target,
           TARGET_HITS / 50.0 * nseeds, nseeds, ok_hits ? "ok" : "MISSED");
    snprintf(target, sizeof target, "%d of %d", located, hits);
    printf("%-40s %-16s every hit %s\n", "hits located within 60 requests", target,
           ok_locate ? "ok" : "MISSED");
    printf("%-40s %-16lld -\n", "worst location error over hits", (long long)worst_locate);
    printf("%-40s %-16d -\n", "hits alarmed before the flip", early);
    printf("%-40s %-16lld <= %d %s\n", "median detection delay (requests)", (long long)median,
           TARGET_MEDIAN_DELAY, ok_delay ? "ok" : "MISSED");
    snprintf(target, sizeof target, "%d (%d seeds)", none_alarms, none_seeds_alarmed);
    printf("%-40s %-16s 0 %s\n", "alarms over 'none' seeds", target, ok_none ? "ok" : "MISSED");
    printf("%-40s %-16.2f -\n", "largest statistic over 'none' seeds", none_peak);
    status = ok_hits && ok_locate && ok_delay && ok_none ? 0 : 1;
    printf("\n%s\n", status ? "TARGETS MISSED" : "all targets met");
  }
done:
  qm_drift_free(plotted);
  free(delays);
  free(t);
  return status;
}
