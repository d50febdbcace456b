/* test_scorer.c: the provider's keyed scorer (pkg/decision.c) gives the reference's scores
 * (vectors/stream-seed7-n100.tsv, Python's own digits) and, bit for bit, what
 * qm_decision_score gives, on the short path (one buffer) and the long one (pieces). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "decision.h"
#include "vectors.h"

static int hexval(char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; }

static void test_vector_rows(void) {
  struct qm_topology *t = demo_topology();
  struct qm_scorer *s[3] = {0};
  struct vector_reader v;
  CHECK(t != NULL);
  if (!t) return;
  for (int p = 0; p < 3; p++)
    CHECK(qm_scorer_new(t->providers[p].score_secret, t->providers[p].score_secret_len, t->providers[p].ep.id,
                        t->expected_context, &s[p]) == 0);
  if (open_vector(&v, STREAM_VECTOR) == 0) {
    while (next_vector_row(&v)) {
      uint8_t repr[32];
      for (int i = 0; i < 32; i++) repr[i] = (uint8_t)(hexval(v.fld[3][2 * i]) << 4 | hexval(v.fld[3][2 * i + 1]));
      for (int p = 0; p < 3; p++) {
        double got = -2, want = strtod(v.fld[4 + p], NULL);
        CHECK(qm_scorer_score(s[p], v.fld[2], strlen(v.fld[2]), repr, v.fld[1], strlen(v.fld[1]), &got) == 0);
        CHECKF(got == want, "row %llu %s: %.17g, Python %s", v.index, t->providers[p].ep.id, got, v.fld[4 + p]);
      }
    }
    close_vector(&v, 100);
  }
  for (int p = 0; p < 3; p++) qm_scorer_free(s[p]);
  free(t);
}

/* Random requests, every length class, against qm_decision_score. */
static void test_against_decision_score(void) {
  /* short, empty, exactly one SHA-256 block (64 bytes), longer (hashed first) */
  static const char *secrets[] = {"A_KEY", "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                  "a secret longer than one SHA-256 block, which HMAC hashes first......"};
  static char domain[2000], ctx[2000];
  uint64_t x = 88172645463325252u;
  for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++) {
    const char *expected = k == 1 ? "" : "CTX_ALPHA";
    struct qm_scorer *s = NULL;
    CHECK(qm_scorer_new((const uint8_t *)secrets[k], strlen(secrets[k]), "PROVIDER_Q", expected, &s) == 0);
    if (!s) continue;
    for (int round = 0; round < 3000; round++) {
      uint8_t repr[32];
      for (int i = 0; i < 32; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        repr[i] = (uint8_t)x;
      }
      size_t dl = x % 4 ? (x >> 8) % 20 : (x >> 8) % 1500, cl = (x >> 20) % 5 ? (x >> 24) % 12 : (x >> 24) % 1500;
      for (size_t i = 0; i < dl; i++) domain[i] = (char)('a' + (x >> (i % 50)) % 26);
      domain[dl] = '\0';
      if (round % 3 == 0) {
        cl = strlen(expected); /* the bonus case */
        memcpy(ctx, expected, cl);
      } else {
        for (size_t i = 0; i < cl; i++) ctx[i] = (char)('A' + (x >> (i % 40)) % 26);
      }
      double got = -2, want = qm_decision_score((const uint8_t *)secrets[k], strlen(secrets[k]), "PROVIDER_Q", domain,
                                                repr, ctx, cl, expected);
      CHECK(qm_scorer_score(s, domain, dl, repr, ctx, cl, &got) == 0);
      CHECKF(got == want, "secret %zu round %d (domain %zu, context %zu bytes): %.17g, want %.17g", k, round, dl, cl,
             got, want);
    }
    qm_scorer_free(s);
  }
}

int main(void) {
  test_vector_rows();
  test_against_decision_score();
  return qm_checks_done();
}
