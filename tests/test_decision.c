/* test_decision.c: pkg/decision against the reference's scores and votes (stream-seed7-n100). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check.h"
#include "decision.h"
#include "stream.h"
#include "vectors.h"

/* The domain's threshold or the default (qm_topology_threshold without linking the loader). */
static double threshold_of(const struct qm_topology *t, const char *domain) {
  for (size_t i = 0; i < t->ndomains; i++)
    if (strcmp(t->domains[i].name, domain) == 0)
      return t->domains[i].threshold;
  return t->default_threshold;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* parse_repr: 64 lower-case hex digits into 32 bytes; 0 or -1. */
static int parse_repr(const char *hex, uint8_t out[32]) {
  if (strlen(hex) != 64)
    return -1;
  for (int i = 0; i < 32; i++) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* same_double: |got| printed with %.17g equals Python's repr |want_repr| read by strtod. */
static int same_double(double got, const char *want_repr, char *got_text, char *want_text,
                       size_t cap) {
  char *end;
  double want = strtod(want_repr, &end);
  if (*end != '\0' || end == want_repr)
    return 0;
  snprintf(got_text, cap, "%.17g", got);
  snprintf(want_text, cap, "%.17g", want);
  return strcmp(got_text, want_text) == 0 && got == want;
}

/* Every row: repr = SHA-256({"i":index}) equals the column, the three scores are exactly
 * Python's, and the votes match with PROVIDER_C flipping from the drawn index (75) on. */
static void test_vector(void) {
  struct qm_stream s;
  struct qm_topology *t = demo_stream(&s, "PROVIDER_C");
  struct vector_reader v;

  if (!t)
    return;
  CHECKF(strcmp(s.byz.provider, "PROVIDER_C") == 0 && s.byz.at == 75,
         "byzantine %s at %" PRId64 ", want PROVIDER_C at 75", s.byz.provider, s.byz.at);

  if (open_vector(&v, STREAM_VECTOR) != 0) {
    free(t);
    return;
  }
  while (next_vector_row(&v)) {
    char payload[QM_STREAM_PAYLOAD_MAX], *end;
    uint8_t repr[32], digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int n;

    CHECKF(parse_repr(v.fld[3], repr) == 0, "row %llu: bad request_repr %s", v.index, v.fld[3]);
    n = snprintf(payload, sizeof payload, "{\"i\":%llu}", v.index);
    CHECKF(EVP_Digest(payload, (size_t)n, digest, &dlen, EVP_sha256(), NULL) && dlen == 32 &&
               memcmp(digest, repr, 32) == 0,
           "row %llu: request_repr is not SHA-256(%s)", v.index, payload);

    for (size_t p = 0; p < 3; p++) {
      const struct qm_provider *pr = &t->providers[p];
      char got_text[64], want_text[64];
      double score, checked = -2.0;
      int byz = strcmp(pr->ep.id, s.byz.provider) == 0, vote, want_vote;

      score = qm_decision_score(pr->score_secret, pr->score_secret_len, pr->ep.id, v.fld[2],
                                repr, v.fld[1], strlen(v.fld[1]), t->expected_context);
      CHECKF(same_double(score, v.fld[4 + p], got_text, want_text, sizeof got_text),
             "row %llu %s: score %s, want %s (Python %s)", v.index, pr->ep.id, got_text,
             want_text, v.fld[4 + p]);
      CHECKF(qm_decision_score_checked(pr->score_secret, pr->score_secret_len, pr->ep.id,
                                       v.fld[2], repr, v.fld[1], strlen(v.fld[1]),
                                       t->expected_context, &checked) == 0 &&
                 checked == score,
             "row %llu %s: score_checked %.17g differs", v.index, pr->ep.id, checked);

      vote = qm_decision_initiated(score, threshold_of(t, v.fld[2]), byz, v.index, s.byz.at);
      want_vote = (int)strtol(v.fld[7 + p], &end, 10);
      CHECKF(*end == '\0' && vote == want_vote, "row %llu %s: vote %d, want %s", v.index,
             pr->ep.id, vote, v.fld[7 + p]);
    }
  }
  close_vector(&v, 100);
  free(t);
}

/* Spot values produced with /usr/bin/python3 (3.11.2) by the reference formula:
 *   d = hmac.new(secret, f"{pid}|{domain}|{repr.hex()}|{ctx}".encode(), sha256).digest()
 *   s = (int.from_bytes(d[:8], "big") % 10_000_000) / 10_000_000.0
 *   s += 0.15 if ctx == "CTX_ALPHA"; min(s, 1.0)
 * with repr = sha256(b'{"i":0}') (zero bytes for the last case). */
static void test_spot_scores(void) {
  static const struct {
    const char *secret, *domain, *ctx;
    size_t ctx_len;
    int zero_repr;
    double want;
  } cases[] = {
      {"A_KEY", "identity", "CTX_A", 5, 0, 0.834449},
      {"A_KEY", "identity", "CTX_ALPHA_2", 11, 0, 0.0390105}, /* longer: no bonus */
      {"A_KEY", "identity", "CTX_ALPHA_2", 5, 0, 0.834449},   /* prefix "CTX_A" only */
      {"A_KEY", "identity", "", 0, 0, 0.4318207},
      {"", "identity", "CTX_ALPHA", 9, 0, 0.3033027}, /* empty secret is valid HMAC */
      {"A_KEY", "unknown", "CTX_ALPHA", 9, 1, 1.0},   /* capped */
  };
  uint8_t repr0[32], zero[32] = {0};
  unsigned int dlen = 0;

  CHECKF(EVP_Digest("{\"i\":0}", 7, repr0, &dlen, EVP_sha256(), NULL) && dlen == 32,
         "EVP_Digest");
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double got = qm_decision_score((const uint8_t *)cases[c].secret, strlen(cases[c].secret),
                                   "PROVIDER_A", cases[c].domain,
                                   cases[c].zero_repr ? zero : repr0, cases[c].ctx,
                                   cases[c].ctx_len, "CTX_ALPHA");
    CHECKF(got == cases[c].want, "spot %zu: got %.17g, want %.17g", c, got, cases[c].want);
  }
}

static void test_initiated(void) {
  CHECKF(qm_decision_initiated(0.55, 0.55, 0, 0, -1) == 1, "score == threshold initiates");
  CHECKF(qm_decision_initiated(0.5499999, 0.55, 0, 0, -1) == 0, "below threshold");
  CHECKF(qm_decision_initiated(0.9, 0.55, 1, 74, 75) == 1, "before the flip");
  CHECKF(qm_decision_initiated(0.9, 0.55, 1, 75, 75) == 0, "at the flip");
  CHECKF(qm_decision_initiated(0.1, 0.55, 1, 99, 75) == 1, "after the flip");
  CHECKF(qm_decision_initiated(0.9, 0.55, 0, 99, 75) == 1, "not byzantine");
  CHECKF(qm_decision_initiated(0.9, 0.55, 1, 0, -1) == 0, "negative at flips from the start");
}

int main(void) {
  test_vector();
  test_spot_scores();
  test_initiated();
  return qm_checks_done();
}
