/* test_stream.c: pkg/stream against the reference demo's stream (vectors/stream-seed7-n100). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check.h"
#include "stream.h"
#include "vectors.h"

static void sha256_hex(const char *data, size_t len, char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  hex[0] = '\0';
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
    CHECKF(0, "EVP_Digest failed");
    return;
  }
  for (unsigned i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* byzantine_topology: demo_topology() with |byzantine_provider| configured; NULL after one
 * failed check when the allocation fails. */
static struct qm_topology *byzantine_topology(const char *byzantine_provider) {
  struct qm_topology *t = demo_topology();

  if (!t) {
    CHECKF(0, "calloc");
    return NULL;
  }
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", byzantine_provider);
  return t;
}

/* Every row of the vector: context, domain, payload and request_repr = SHA-256(payload). */
static void test_vector(const char *byzantine_provider, const char *want_provider) {
  struct qm_stream s;
  struct qm_topology *t = demo_stream(&s, byzantine_provider);
  struct vector_reader v;

  if (!t)
    return;
  CHECKF(strcmp(s.byz.provider, want_provider) == 0, "byzantine \"%s\": got \"%s\", want %s",
         byzantine_provider, s.byz.provider, want_provider);
  CHECKF(s.byz.at == 75, "byzantine \"%s\": flip at %" PRId64 ", want 75", byzantine_provider,
         s.byz.at);

  if (open_vector(&v, STREAM_VECTOR) != 0) {
    free(t);
    return;
  }
  while (next_vector_row(&v)) {
    char want_payload[QM_STREAM_PAYLOAD_MAX], hex[65];
    struct qm_stream_item it;

    qm_stream_next(&s, &it);
    CHECKF(it.index == v.index, "row %llu: stream index %" PRIu64, v.index, it.index);
    CHECKF(strcmp(it.context, v.fld[1]) == 0, "row %llu: context %s, want %s", v.index,
           it.context, v.fld[1]);
    CHECKF(strcmp(it.domain, v.fld[2]) == 0, "row %llu: domain %s, want %s", v.index,
           it.domain, v.fld[2]);
    snprintf(want_payload, sizeof want_payload, "{\"i\":%llu}", v.index);
    CHECKF(it.payload_len == strlen(want_payload) &&
               memcmp(it.payload, want_payload, it.payload_len) == 0,
           "row %llu: payload %.*s, want %s", v.index, (int)it.payload_len, it.payload,
           want_payload);
    sha256_hex(it.payload, it.payload_len, hex);
    CHECKF(strcmp(hex, v.fld[3]) == 0, "row %llu: request_repr %s, want %s", v.index, hex,
           v.fld[3]);
  }
  close_vector(&v, 100);
  free(t);
}

/* Spot values produced with /usr/bin/python3 (3.11.2) mirroring the reference:
 *   r = random.Random(7); pid = r.choice(providers) (when drawn);
 *   lo = max(1, int(N*0.55)); hi = max(lo+1, int(N*0.90)); at = r.randint(lo, hi)
 *     (when drawn); then 3 x (ctx = "CTX_ALPHA" if r.random() > 0.1 else "SPOOF",
 *   domain = r.choice(["payments", "identity", "storage"])). */
static void test_draw_variants(void) {
  static const struct {
    const char *byz;
    int64_t at_cfg;
    const char *want_pid;
    int64_t want_at;
    const char *ctx[3], *dom[3];
  } cases[] = {
      {"", -1, "PROVIDER_B", 64,
       {"CTX_ALPHA", "SPOOF", "SPOOF"}, {"payments", "storage", "storage"}},
      {"PROVIDER_C", 80, "PROVIDER_C", 80,
       {"CTX_ALPHA", "CTX_ALPHA", "SPOOF"}, {"payments", "payments", "storage"}},
      {"none", -1, "", 75,
       {"CTX_ALPHA", "CTX_ALPHA", "CTX_ALPHA"}, {"identity", "payments", "payments"}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct qm_topology *t = byzantine_topology(cases[c].byz);
    struct qm_stream s;
    struct qm_err err = {0};
    if (!t)
      return;
    t->byzantine_at = cases[c].at_cfg;
    if (qm_stream_init(&s, t, 0, &err) != 0) {
      CHECKF(0, "qm_stream_init(\"%s\"): %s", cases[c].byz, err.msg);
      free(t);
      continue;
    }
    CHECKF(strcmp(s.byz.provider, cases[c].want_pid) == 0, "case %zu: provider \"%s\", want \"%s\"",
           c, s.byz.provider, cases[c].want_pid);
    CHECKF(s.byz.at == cases[c].want_at, "case %zu: at %" PRId64 ", want %" PRId64, c, s.byz.at,
           cases[c].want_at);
    for (int i = 0; i < 3; i++) {
      struct qm_stream_item it;
      qm_stream_next(&s, &it);
      CHECKF(strcmp(it.context, cases[c].ctx[i]) == 0 && strcmp(it.domain, cases[c].dom[i]) == 0,
             "case %zu item %d: %s/%s, want %s/%s", c, i, it.context, it.domain,
             cases[c].ctx[i], cases[c].dom[i]);
    }
    free(t);
  }
}

/* The drawn flip index for other N (same Python, seed 7, provider configured):
 *   r = random.Random(7); lo = max(1, int(N*0.55)); hi = max(lo+1, int(N*0.90));
 *   r.randint(lo, hi)  ->  N=0: 2, 1: 2, 37: 25, 1000: 715, 123456789: 89633281. */
static void test_flip_index(void) {
  static const struct {
    uint64_t n;
    int64_t at;
  } cases[] = {{0, 2}, {1, 2}, {37, 25}, {1000, 715}, {123456789, 89633281}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    struct qm_topology *t = byzantine_topology("PROVIDER_A");
    struct qm_stream s;
    struct qm_err err = {0};
    if (!t)
      return;
    t->total_requests = cases[c].n;
    CHECKF(qm_stream_init(&s, t, 0, &err) == 0, "N=%" PRIu64 ": %s", cases[c].n, err.msg);
    CHECKF(s.byz.at == cases[c].at, "N=%" PRIu64 ": at %" PRId64 ", want %" PRId64, cases[c].n,
           s.byz.at, cases[c].at);
    free(t);
  }
}

/* No seed: the clock seed is used as random.seed(time.time_ns()); a bad seed is an error
 * naming it and leaves the stream untouched. */
static void test_seeds(void) {
  struct qm_topology *t = byzantine_topology("PROVIDER_C");
  struct qm_stream a, b, before;
  struct qm_stream_item ia, ib;
  struct qm_err err = {0};

  if (!t)
    return;
  CHECKF(qm_stream_init(&a, t, 12345, &err) == 0, "seed 7: %s", err.msg);
  t->random_seed[0] = '\0';
  CHECKF(qm_stream_init(&b, t, 7, &err) == 0, "clock seed: %s", err.msg);
  CHECKF(a.byz.at == b.byz.at, "clock seed 7 differs from seed \"7\"");
  qm_stream_next(&a, &ia);
  qm_stream_next(&b, &ib);
  CHECKF(strcmp(ia.context, ib.context) == 0 && strcmp(ia.domain, ib.domain) == 0,
         "clock seed 7 stream differs from seed \"7\"");

  snprintf(t->random_seed, sizeof t->random_seed, "%s", "seven");
  before = b;
  qm_err_clear(&err);
  CHECKF(qm_stream_init(&b, t, 7, &err) < 0, "seed \"seven\" accepted");
  CHECKF(strstr(err.msg, "seven") != NULL, "error does not name the seed: %s", err.msg);
  CHECKF(memcmp(&b, &before, sizeof b) == 0, "failed init changed the stream");

  snprintf(t->random_seed, sizeof t->random_seed, "%s", "7");
  t->ndomains = 0;
  qm_err_clear(&err);
  CHECKF(qm_stream_init(&b, t, 7, &err) < 0, "no domains accepted");
  free(t);
}

int main(void) {
  test_vector("PROVIDER_C", "PROVIDER_C");
  test_vector("none", ""); /* "none" still draws the index: the same stream */
  test_draw_variants();
  test_flip_index();
  test_seeds();
  return qm_checks_done();
}
