/* test_drift.c: pkg/drift (the auditor's change-point detector) and pkg/plot_svg.
 *
 * Fixed seeds of the reference stream are replayed through pkg/stream and pkg/decision and
 * the detector's reports are asserted exactly (it is deterministic); synthetic sequences
 * check a step change is found near its index and a stationary one raises no alarm; every
 * allocation of qm_drift_new is failed in turn (calloc is wrapped at link time).
 * Set QM_DRIFT_DUMP=1 to print the reports, e.g. to refresh the expected values. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "decision.h"
#include "drift.h"
#include "err.h"
#include "plot_svg.h"
#include "pyrandom.h"
#include "stream.h"
#include "topology.h"

static int passed, failed;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (cond) {                                           \
      passed++;                                           \
    } else {                                              \
      failed++;                                           \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);         \
      printf(__VA_ARGS__);                                \
      printf("\n");                                       \
    }                                                     \
  } while (0)

/* ---- calloc failure injection: -Wl,--wrap=calloc (tests/CMakeLists.txt) ---- */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static long fail_countdown = -1; /* fail the call that brings it to 0; -1: never */
void *__wrap_calloc(size_t n, size_t size) {
  if (fail_countdown >= 0 && fail_countdown-- == 0)
    return NULL;
  return __real_calloc(n, size);
}

/* ---- the reference stream, replayed as the auditor would see it ---- */
#define NPROV 3
#define NDOM 3
static const char *const ids[NPROV] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};
static const char *const secrets[NPROV] = {"A_KEY", "B_KEY", "C_KEY"};
static const struct qm_domain domains[NDOM] = {
    {"payments", 0.55}, {"identity", 0.60}, {"storage", 0.50}};

struct replay {
  char byz[QM_ID_MAX]; /* drawn or configured; "" for none */
  int64_t at;
  struct qm_drift *d;
};

/* replay: seeds the stream with |seed|, |n| requests, BYZANTINE_PROVIDER |byz| ("" = drawn,
 * "none"), BYZANTINE_AT drawn, and feeds every request's votes to a new default detector. */
static int replay(const char *seed, uint64_t n, const char *byz, struct replay *out) {
  struct qm_topology *t = calloc(1, sizeof *t);
  struct qm_stream s;
  struct qm_err err;
  int rc = -ENOMEM;

  memset(out, 0, sizeof *out);
  if (!t)
    return rc;
  snprintf(t->source, sizeof t->source, "<test>");
  t->nproviders = NPROV;
  for (size_t i = 0; i < NPROV; i++) {
    snprintf(t->providers[i].ep.id, sizeof t->providers[i].ep.id, "%s", ids[i]);
    t->providers[i].score_secret_len = strlen(secrets[i]);
    memcpy(t->providers[i].score_secret, secrets[i], t->providers[i].score_secret_len);
  }
  t->ndomains = NDOM;
  memcpy(t->domains, domains, sizeof domains);
  t->default_threshold = 0.60;
  t->quorum_threshold = 2;
  snprintf(t->expected_context, sizeof t->expected_context, "CTX_ALPHA");
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", byz);
  t->byzantine_at = -1;
  t->total_requests = n;
  t->failover_at = -1;
  snprintf(t->random_seed, sizeof t->random_seed, "%s", seed);

  rc = qm_stream_init(&s, t, 0, &err);
  if (rc)
    goto out;
  rc = qm_drift_new(NPROV, NDOM, NULL, &out->d);
  if (rc)
    goto out;
  snprintf(out->byz, sizeof out->byz, "%s", s.byz.provider);
  out->at = s.byz.at;
  for (uint64_t i = 0; i < n; i++) {
    struct qm_stream_item it;
    uint8_t repr[32];
    unsigned int len = 0;
    int8_t votes[NPROV];
    size_t dom = 0;
    int yes = 0;

    qm_stream_next(&s, &it);
    if (!EVP_Digest(it.payload, it.payload_len, repr, &len, EVP_sha256(), NULL)) {
      rc = -EIO;
      goto out;
    }
    while (dom < NDOM && strcmp(domains[dom].name, it.domain) != 0)
      dom++;
    for (size_t p = 0; p < NPROV; p++) {
      const struct qm_provider *pv = &t->providers[p];
      double score = qm_decision_score(pv->score_secret, pv->score_secret_len, pv->ep.id,
                                       it.domain, repr, it.context, strlen(it.context),
                                       t->expected_context);
      votes[p] = (int8_t)qm_decision_initiated(score, domains[dom].threshold,
                                               strcmp(pv->ep.id, s.byz.provider) == 0,
                                               it.index, s.byz.at);
      yes += votes[p];
    }
    qm_drift_observe(out->d, it.index, dom, votes, yes >= 2);
  }
  rc = 0;
out:
  if (rc) {
    qm_drift_free(out->d);
    out->d = NULL;
  }
  free(t);
  return rc;
}

static void dump(const char *name, const struct qm_drift *d, size_t n) {
  if (!getenv("QM_DRIFT_DUMP"))
    return;
  for (size_t i = 0; i < n; i++) {
    struct qm_drift_report r;
    qm_drift_report(d, i, &r);
    printf("%s[%zu] = {%d, %" PRIu64 ", %" PRIu64 ", %.17g, %.17g, %.17g}\n", name, i,
           r.suspected, r.alarm_at, r.change_at, r.statistic, r.threshold, r.peak);
  }
}

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * (1.0 + fabs(b)); }

/* expect: the report of |provider| equals |want| (integers exactly, doubles to 1e-9). */
static void expect(const char *name, const struct qm_drift *d, size_t provider,
                   const struct qm_drift_report *want) {
  struct qm_drift_report r;
  qm_drift_report(d, provider, &r);
  CHECK(r.suspected == want->suspected, "%s[%zu].suspected = %d, want %d", name, provider,
        r.suspected, want->suspected);
  CHECK(r.alarm_at == want->alarm_at, "%s[%zu].alarm_at = %" PRIu64 ", want %" PRIu64, name,
        provider, r.alarm_at, want->alarm_at);
  CHECK(r.change_at == want->change_at, "%s[%zu].change_at = %" PRIu64 ", want %" PRIu64,
        name, provider, r.change_at, want->change_at);
  CHECK(near(r.statistic, want->statistic), "%s[%zu].statistic = %.17g, want %.17g", name,
        provider, r.statistic, want->statistic);
  CHECK(near(r.threshold, want->threshold), "%s[%zu].threshold = %.17g", name, provider,
        r.threshold);
  CHECK(near(r.peak, want->peak), "%s[%zu].peak = %.17g, want %.17g", name, provider, r.peak,
        want->peak);
}

/* ---- fixed seeds of the reference stream ---- */

/* Seed 7, N=100, PROVIDER_C flips at 75: 25 inverted votes carry about 5 nats, far below the
 * alarm level, so nobody is suspected; C's statistic leads and its excursion began at 53. */
static void test_seed7_n100(void) {
  static const struct qm_drift_report want[NPROV] = {
      {0, 0, 82, 0.67554957487572198, 12, 1.3775980377031831},
      {0, 0, 57, 0.81809751668829644, 12, 2.795044012498257},
      {0, 0, 53, 4.7637418407710292, 12, 5.4304846264930884},
  };
  struct replay r;
  CHECK(replay("7", 100, "PROVIDER_C", &r) == 0, "replay seed 7 N=100");
  if (!r.d)
    return;
  CHECK(strcmp(r.byz, "PROVIDER_C") == 0 && r.at == 75, "seed 7: %s at %" PRId64, r.byz, r.at);
  dump("seed7_n100", r.d, NPROV);
  for (size_t i = 0; i < NPROV; i++)
    expect("seed7_n100", r.d, i, &want[i]);
  qm_drift_free(r.d);
}

/* Seed 7, N=2000, provider and flip drawn: PROVIDER_B from 1254; alarm at 1372, located at
 * 1263; the honest two stay far below the threshold. Replayed twice: same reports, same
 * traces. */
static void test_seed7_n2000(void) {
  static const struct qm_drift_report want[NPROV] = {
      {0, 0, 1986, 0.68769241009383109, 12, 4.9195598839852028},
      {1, 1372, 1263, 61.469650231736964, 12, 62.015226982714047},
      {0, 0, 1976, 1.1050199375667196, 12, 3.4590182497424933},
  };
  struct replay r, again;
  CHECK(replay("7", 2000, "", &r) == 0, "replay seed 7 N=2000");
  CHECK(replay("7", 2000, "", &again) == 0, "replay seed 7 N=2000 again");
  if (!r.d || !again.d)
    goto out;
  CHECK(strcmp(r.byz, "PROVIDER_B") == 0 && r.at == 1254, "seed 7: %s at %" PRId64, r.byz,
        r.at);
  dump("seed7_n2000", r.d, NPROV);
  for (size_t i = 0; i < NPROV; i++) {
    const uint64_t *s1, *s2;
    const double *v1, *v2;
    size_t n1 = qm_drift_trace(r.d, i, &s1, &v1), n2 = qm_drift_trace(again.d, i, &s2, &v2);
    expect("seed7_n2000", r.d, i, &want[i]);
    expect("seed7_n2000 again", again.d, i, &want[i]);
    CHECK(n1 == 2000 && n2 == n1 && memcmp(s1, s2, n1 * sizeof *s1) == 0 &&
              memcmp(v1, v2, n1 * sizeof *v1) == 0,
          "provider %zu: traces differ (%zu, %zu points)", i, n1, n2);
  }
out:
  qm_drift_free(r.d);
  qm_drift_free(again.d);
}

/* Seed 3, N=2000, nobody Byzantine: no alarm. */
static void test_none_seed(void) {
  static const struct qm_drift_report want[NPROV] = {
      {0, 0, 1955, 5.8706501049781226, 12, 6.0940995126550064},
      {0, 0, 1995, 0.091729771458141762, 12, 5.8645366339276856},
      {0, 0, 1998, 0.50414417283923141, 12, 5.1841812958642226},
  };
  struct replay r;
  CHECK(replay("3", 2000, "none", &r) == 0, "replay seed 3 none");
  if (!r.d)
    return;
  CHECK(r.byz[0] == '\0', "none: Byzantine '%s'", r.byz);
  dump("seed3_none", r.d, NPROV);
  for (size_t i = 0; i < NPROV; i++)
    expect("seed3_none", r.d, i, &want[i]);
  qm_drift_free(r.d);
}

/* ---- synthetic sequences (pkg/pyrandom as the deterministic source) ---- */

/* synth: |np| providers, |nd| domains with initiation rates |rates|; provider |flipper|
 * (-1: nobody) inverts from |flip_at| on. Feeds |n| requests to |d|. */
static void synth(struct qm_drift *d, uint64_t seed, size_t np, size_t nd, const double *rates,
                  uint64_t n, long flipper, uint64_t flip_at) {
  struct qm_pyrandom rng;
  int8_t votes[8];
  qm_pyrandom_seed_u64(&rng, seed);
  for (uint64_t i = 0; i < n; i++) {
    size_t dom = (size_t)qm_pyrandom_randbelow(&rng, nd);
    for (size_t p = 0; p < np; p++) {
      votes[p] = qm_pyrandom_random(&rng) < rates[dom];
      if ((long)p == flipper && i >= flip_at)
        votes[p] = !votes[p];
    }
    qm_drift_observe(d, i, dom, votes, 0);
  }
}

static void test_step_change(void) {
  static const double rates[2] = {0.70, 0.60};
  static const struct qm_drift_report want = {1, 1559, 1508, 303.23296435226069, 12,
                                              303.23296435226069};
  struct qm_drift *d = NULL;
  CHECK(qm_drift_new(4, 2, NULL, &d) == 0, "new");
  if (!d)
    return;
  synth(d, 11, 4, 2, rates, 3000, 2, 1500);
  dump("step", d, 4);
  for (size_t p = 0; p < 4; p++) {
    struct qm_drift_report r;
    qm_drift_report(d, p, &r);
    if (p != 2) {
      CHECK(!r.suspected && r.peak < r.threshold, "honest %zu suspected (peak %.2f)", p, r.peak);
      continue;
    }
    CHECK(r.suspected && r.alarm_at >= 1500 && r.alarm_at <= 1700, "flipper: alarm %" PRIu64,
          r.alarm_at);
    CHECK(r.change_at + 60 >= 1500 && r.change_at <= 1560, "flipper: change %" PRIu64,
          r.change_at);
    expect("step", d, p, &want);
  }
  qm_drift_free(d);
}

/* One provider alone: it is its own history. */
static void test_single_provider(void) {
  static const double rates[3] = {0.635, 0.585, 0.535};
  static const struct qm_drift_report want = {1, 2615, 2523, 90.185201033448791, 12,
                                              90.887473292398099};
  struct qm_drift *d = NULL;
  struct qm_drift_report r;
  CHECK(qm_drift_new(1, 3, NULL, &d) == 0, "new");
  if (!d)
    return;
  synth(d, 5, 1, 3, rates, 4000, 0, 2500);
  qm_drift_report(d, 0, &r);
  dump("single", d, 1);
  CHECK(r.suspected && r.alarm_at > 2500 && r.alarm_at < 2900, "single: alarm %" PRIu64,
        r.alarm_at);
  CHECK(r.change_at + 60 >= 2500 && r.change_at <= 2560, "single: change %" PRIu64,
        r.change_at);
  expect("single", d, 0, &want);
  qm_drift_free(d);
}

static void test_stationary(void) {
  static const double rates[3] = {0.635, 0.585, 0.535};
  for (uint64_t seed = 100; seed < 110; seed++) {
    struct qm_drift *d = NULL;
    CHECK(qm_drift_new(5, 3, NULL, &d) == 0, "new");
    if (!d)
      return;
    synth(d, seed, 5, 3, rates, 4000, -1, 0);
    for (size_t p = 0; p < 5; p++) {
      struct qm_drift_report r;
      qm_drift_report(d, p, &r);
      CHECK(!r.suspected && r.peak < r.threshold, "seed %" PRIu64 " provider %zu: alarm at %"
            PRIu64 " (peak %.2f)", seed, p, r.alarm_at, r.peak);
    }
    qm_drift_free(d);
  }
}

/* ---- API edges ---- */

static void test_api(void) {
  struct qm_drift_params p;
  struct qm_drift *d = (struct qm_drift *)&p, *sentinel = d;
  struct qm_drift_report r;
  const uint64_t *seqs;
  const double *vals;
  int8_t votes[3] = {1, -1, 0};
  size_t n;
  uint64_t prev = 0;
  int ascending = 1;
  double top = 0.0;

  qm_drift_params_default(&p);
  CHECK(p.threshold == 12.0 && p.window == 1024 && p.tolerance == 60, "defaults");
  CHECK(qm_drift_new(0, 3, NULL, &d) == -EINVAL && d == sentinel, "zero providers");
  p.threshold = 0;
  CHECK(qm_drift_new(3, 3, &p, &d) == -EINVAL && d == sentinel, "zero threshold");
  qm_drift_params_default(&p);
  p.window = 8;
  CHECK(qm_drift_new(3, 3, &p, &d) == -EINVAL && d == sentinel, "tiny window");
  qm_drift_free(NULL);

  /* every allocation fails in turn: -ENOMEM, *out untouched, nothing leaked (ASan) */
  for (long i = 0;; i++) {
    int rc;
    fail_countdown = i;
    rc = qm_drift_new(3, 3, NULL, &d);
    fail_countdown = -1;
    if (rc == 0) {
      CHECK(i >= 3, "only %ld allocations", i);
      qm_drift_free(d);
      break;
    }
    CHECK(rc == -ENOMEM && d == sentinel, "allocation %ld: rc %d", i, rc);
  }

  CHECK(qm_drift_new(3, 2, NULL, &d) == 0, "new");
  if (!d)
    return;
  CHECK(qm_drift_nproviders(d) == 3, "nproviders");
  for (uint64_t i = 0; i < 20000; i++) /* unknown domains (2 and beyond) pool together */
    qm_drift_observe(d, i * 3 + 7, i % 5, votes, 1);
  qm_drift_report(d, 1, &r); /* never voted */
  CHECK(!r.suspected && r.statistic == 0.0 && r.peak == 0.0 && r.change_at == 0,
        "missing votes counted");
  CHECK(qm_drift_trace(d, 1, &seqs, &vals) == 0, "trace of a silent provider");
  n = qm_drift_trace(d, 0, &seqs, &vals);
  CHECK(n > QM_DRIFT_TRACE_MAX / 2 && n <= QM_DRIFT_TRACE_MAX, "trace bounded: %zu", n);
  for (size_t k = 0; k < n; k++) {
    ascending &= k == 0 || seqs[k] > prev;
    prev = seqs[k];
    if (vals[k] > top)
      top = vals[k];
  }
  qm_drift_report(d, 0, &r);
  CHECK(ascending && n && seqs[n - 1] == 19999 * 3 + 7, "trace order, last %" PRIu64, prev);
  CHECK(top == r.peak, "trace keeps the peak: %.6f vs %.6f", top, r.peak);
  CHECK(qm_drift_trace(d, 3, &seqs, &vals) == 0 && !seqs && !vals, "unknown provider");
  qm_drift_report(d, 3, &r);
  CHECK(!r.suspected && r.threshold == 0.0, "unknown provider report zeroed");
  qm_drift_free(d);
}

/* ---- plot ---- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  long len;
  if (!f)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = calloc(1, (size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

static size_t count(const char *hay, const char *needle) {
  size_t c = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    c++;
  return c;
}

static void test_plot(void) {
  static const char *const names[3] = {"PROVIDER_A", "B&<x>", "PROVIDER_C"};
  char dir[] = "/tmp/test_drift.XXXXXX", path[256], tmp[300];
  struct qm_err err;
  struct replay r;
  char *svg;

  if (!mkdtemp(dir)) {
    CHECK(0, "mkdtemp");
    return;
  }
  snprintf(path, sizeof path, "%s/drift.svg", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  CHECK(replay("7", 2000, "", &r) == 0, "replay");
  if (!r.d)
    goto out;
  qm_err_clear(&err);
  CHECK(qm_plot_svg_write(path, r.d, names, 3, r.at, r.byz, &err) == 0, "write: %s", err.msg);
  svg = slurp(path);
  CHECK(svg != NULL, "read back %s", path);
  if (svg) {
    size_t len = strlen(svg);
    CHECK(strncmp(svg, "<?xml", 5) == 0 && len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0,
          "SVG framing");
    CHECK(count(svg, "<polyline") == 3, "one polyline per provider");
    CHECK(strstr(svg, "threshold 12.00") != NULL, "threshold line");
    CHECK(strstr(svg, "true flip PROVIDER_B @ 1254") != NULL, "true flip line");
    CHECK(strstr(svg, "estimated B&amp;&lt;x&gt; @ 1263") != NULL, "estimate line, escaped");
    CHECK(strstr(svg, "B&<x>") == NULL, "no raw id");
    CHECK(strstr(svg, "<script") == NULL && strstr(svg, "href") == NULL, "self-contained");
    free(svg);
  }
  CHECK(access(tmp, F_OK) != 0, "temporary file left behind");

  qm_err_clear(&err);
  CHECK(qm_plot_svg_write("/nonexistent-dir/x.svg", r.d, names, 3, -1, NULL, &err) < 0 &&
            strstr(err.msg, "/nonexistent-dir/x.svg") != NULL,
        "unwritable path: '%s'", err.msg);
  CHECK(qm_plot_svg_write(path, r.d, names, 4, -1, NULL, &err) == -EINVAL, "too many ids");
  CHECK(qm_plot_svg_write(path, r.d, names, 3, -1, NULL, NULL) == 0, "no true flip");
  svg = slurp(path);
  CHECK(svg && strstr(svg, "true flip PROVIDER") == NULL, "true flip not drawn when unknown");
  free(svg);
out:
  qm_drift_free(r.d);
  remove(path);
  rmdir(dir);
}

int main(void) {
  test_seed7_n100();
  test_seed7_n2000();
  test_none_seed();
  test_step_change();
  test_single_provider();
  test_stationary();
  test_api();
  test_plot();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
