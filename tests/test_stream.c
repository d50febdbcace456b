/* test_stream.c: pkg/stream against the reference demo's stream (vectors/stream-seed7-n100). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "stream.h"

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

#define VECTOR_FIELDS 10

/* demo_topology: the default topology's decision-relevant part, filled by hand (no YAML). */
static struct qm_topology *demo_topology(void) {
  static const char *ids[] = {"PROVIDER_A", "PROVIDER_B", "PROVIDER_C"};
  static const char *secrets[] = {"A_KEY", "B_KEY", "C_KEY"};
  static const struct qm_domain domains[] = {
      {"payments", 0.55}, {"identity", 0.60}, {"storage", 0.50}};
  struct qm_topology *t = calloc(1, sizeof *t);

  if (!t)
    return NULL;
  snprintf(t->source, sizeof t->source, "%s", "<test>");
  t->nproviders = 3;
  for (size_t i = 0; i < 3; i++) {
    snprintf(t->providers[i].ep.id, sizeof t->providers[i].ep.id, "%s", ids[i]);
    t->providers[i].score_secret_len = strlen(secrets[i]);
    memcpy(t->providers[i].score_secret, secrets[i], t->providers[i].score_secret_len);
  }
  t->ndomains = 3;
  memcpy(t->domains, domains, sizeof domains);
  t->default_threshold = 0.60;
  t->quorum_threshold = 2;
  snprintf(t->expected_context, sizeof t->expected_context, "%s", "CTX_ALPHA");
  t->byzantine_at = -1;
  t->total_requests = 100;
  t->failover_at = -1;
  snprintf(t->random_seed, sizeof t->random_seed, "%s", "7");
  return t;
}

/* split_row: cuts |line| at tabs (and the trailing newline) into at most |max| fields. */
static size_t split_row(char *line, char **fields, size_t max) {
  size_t n = 0;
  char *p = line;
  line[strcspn(line, "\r\n")] = '\0';
  while (n < max) {
    fields[n++] = p;
    p = strchr(p, '\t');
    if (!p)
      break;
    *p++ = '\0';
  }
  return n;
}

static void sha256_hex(const char *data, size_t len, char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  hex[0] = '\0';
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
    CHECK(0, "EVP_Digest failed");
    return;
  }
  for (unsigned i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Every row of the vector: context, domain, payload and request_repr = SHA-256(payload). */
static void test_vector(const char *byzantine_provider, const char *want_provider) {
  struct qm_topology *t = demo_topology();
  struct qm_stream s;
  struct qm_err err = {0};
  FILE *f = NULL;
  char line[1024];
  int rows = 0;

  CHECK(t != NULL, "calloc");
  if (!t)
    return;
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", byzantine_provider);
  if (qm_stream_init(&s, t, 0, &err) != 0) {
    CHECK(0, "qm_stream_init: %s", err.msg);
    goto out;
  }
  CHECK(strcmp(s.byz.provider, want_provider) == 0, "byzantine \"%s\": got \"%s\", want %s",
        byzantine_provider, s.byz.provider, want_provider);
  CHECK(s.byz.at == 75, "byzantine \"%s\": flip at %" PRId64 ", want 75", byzantine_provider,
        s.byz.at);

  f = fopen("vectors/stream-seed7-n100.tsv", "r");
  CHECK(f != NULL, "cannot open vectors/stream-seed7-n100.tsv");
  if (!f)
    goto out;
  while (fgets(line, sizeof line, f)) {
    char *fld[VECTOR_FIELDS], want_payload[QM_STREAM_PAYLOAD_MAX], hex[65];
    struct qm_stream_item it;
    unsigned long long index;
    char *end;

    if (line[0] == '#' || strncmp(line, "index\t", 6) == 0)
      continue;
    if (split_row(line, fld, VECTOR_FIELDS) != VECTOR_FIELDS) {
      CHECK(0, "malformed vector row: %s", line);
      continue;
    }
    index = strtoull(fld[0], &end, 10);
    CHECK(*end == '\0', "bad index \"%s\"", fld[0]);
    rows++;

    qm_stream_next(&s, &it);
    CHECK(it.index == index, "row %llu: stream index %" PRIu64, index, it.index);
    CHECK(strcmp(it.context, fld[1]) == 0, "row %llu: context %s, want %s", index, it.context,
          fld[1]);
    CHECK(strcmp(it.domain, fld[2]) == 0, "row %llu: domain %s, want %s", index, it.domain,
          fld[2]);
    snprintf(want_payload, sizeof want_payload, "{\"i\":%llu}", index);
    CHECK(it.payload_len == strlen(want_payload) &&
              memcmp(it.payload, want_payload, it.payload_len) == 0,
          "row %llu: payload %.*s, want %s", index, (int)it.payload_len, it.payload,
          want_payload);
    sha256_hex(it.payload, it.payload_len, hex);
    CHECK(strcmp(hex, fld[3]) == 0, "row %llu: request_repr %s, want %s", index, hex, fld[3]);
  }
  CHECK(rows == 100, "stream-seed7-n100.tsv: %d rows, want 100", rows);

out:
  if (f)
    fclose(f);
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
    struct qm_topology *t = demo_topology();
    struct qm_stream s;
    struct qm_err err = {0};
    if (!t) {
      CHECK(0, "calloc");
      return;
    }
    snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", cases[c].byz);
    t->byzantine_at = cases[c].at_cfg;
    if (qm_stream_init(&s, t, 0, &err) != 0) {
      CHECK(0, "qm_stream_init(\"%s\"): %s", cases[c].byz, err.msg);
      free(t);
      continue;
    }
    CHECK(strcmp(s.byz.provider, cases[c].want_pid) == 0, "case %zu: provider \"%s\", want \"%s\"",
          c, s.byz.provider, cases[c].want_pid);
    CHECK(s.byz.at == cases[c].want_at, "case %zu: at %" PRId64 ", want %" PRId64, c, s.byz.at,
          cases[c].want_at);
    for (int i = 0; i < 3; i++) {
      struct qm_stream_item it;
      qm_stream_next(&s, &it);
      CHECK(strcmp(it.context, cases[c].ctx[i]) == 0 && strcmp(it.domain, cases[c].dom[i]) == 0,
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
    struct qm_topology *t = demo_topology();
    struct qm_stream s;
    struct qm_err err = {0};
    if (!t) {
      CHECK(0, "calloc");
      return;
    }
    snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", "PROVIDER_A");
    t->total_requests = cases[c].n;
    CHECK(qm_stream_init(&s, t, 0, &err) == 0, "N=%" PRIu64 ": %s", cases[c].n, err.msg);
    CHECK(s.byz.at == cases[c].at, "N=%" PRIu64 ": at %" PRId64 ", want %" PRId64, cases[c].n,
          s.byz.at, cases[c].at);
    free(t);
  }
}

/* No seed: the clock seed is used as random.seed(time.time_ns()); a bad seed is an error
 * naming it and leaves the stream untouched. */
static void test_seeds(void) {
  struct qm_topology *t = demo_topology();
  struct qm_stream a, b, before;
  struct qm_stream_item ia, ib;
  struct qm_err err = {0};

  if (!t) {
    CHECK(0, "calloc");
    return;
  }
  snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", "PROVIDER_C");
  CHECK(qm_stream_init(&a, t, 12345, &err) == 0, "seed 7: %s", err.msg);
  t->random_seed[0] = '\0';
  CHECK(qm_stream_init(&b, t, 7, &err) == 0, "clock seed: %s", err.msg);
  CHECK(a.byz.at == b.byz.at, "clock seed 7 differs from seed \"7\"");
  qm_stream_next(&a, &ia);
  qm_stream_next(&b, &ib);
  CHECK(strcmp(ia.context, ib.context) == 0 && strcmp(ia.domain, ib.domain) == 0,
        "clock seed 7 stream differs from seed \"7\"");

  snprintf(t->random_seed, sizeof t->random_seed, "%s", "seven");
  before = b;
  qm_err_clear(&err);
  CHECK(qm_stream_init(&b, t, 7, &err) < 0, "seed \"seven\" accepted");
  CHECK(strstr(err.msg, "seven") != NULL, "error does not name the seed: %s", err.msg);
  CHECK(memcmp(&b, &before, sizeof b) == 0, "failed init changed the stream");

  snprintf(t->random_seed, sizeof t->random_seed, "%s", "7");
  t->ndomains = 0;
  qm_err_clear(&err);
  CHECK(qm_stream_init(&b, t, 7, &err) < 0, "no domains accepted");
  free(t);
}

int main(void) {
  test_vector("PROVIDER_C", "PROVIDER_C");
  test_vector("none", ""); /* "none" still draws the index: the same stream */
  test_draw_variants();
  test_flip_index();
  test_seeds();
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
