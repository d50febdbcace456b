/* test_pyrandom.c: pkg/pyrandom against Python 3's `random` (vectors and spot values). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pyrandom.h"

/* Every row of vectors/mt19937.tsv: seed (decimal text), index, getrandbits(32) word. */
static void test_mt_vectors(void) {
  FILE *f = fopen("vectors/mt19937.tsv", "r");
  char line[512];
  int rows = 0;

  CHECKF(f != NULL, "cannot open vectors/mt19937.tsv");
  if (!f)
    return;
  while (fgets(line, sizeof line, f)) {
    char seed[256], *tab1, *tab2, *end;
    unsigned long long index, word;
    struct qm_pyrandom r;
    struct qm_err err = {0};
    uint32_t got = 0;

    if (line[0] == '#' || strncmp(line, "seed\t", 5) == 0 || line[0] == '\n')
      continue;
    tab1 = strchr(line, '\t');
    tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (!tab2 || (size_t)(tab1 - line) >= sizeof seed) {
      CHECKF(0, "malformed vector row: %s", line);
      continue;
    }
    memcpy(seed, line, (size_t)(tab1 - line));
    seed[tab1 - line] = '\0';
    errno = 0;
    index = strtoull(tab1 + 1, &end, 10);
    CHECKF(errno == 0 && end == tab2, "bad index in row: %s", line);
    word = strtoull(tab2 + 1, &end, 10);
    CHECKF(errno == 0 && (*end == '\n' || *end == '\0'), "bad word in row: %s", line);
    rows++;

    CHECKF(qm_pyrandom_seed_text(&r, seed, &err) == 0, "seed_text(%s): %s", seed, err.msg);
    for (unsigned long long i = 0; i <= index; i++)
      got = qm_pyrandom_next32(&r);
    CHECKF(got == word, "seed %s word %llu: got %" PRIu32 ", want %llu", seed, index, got, word);

    /* Seeds that fit 64 bits must give the same words through seed_u64. */
    errno = 0;
    {
      unsigned long long s64 = strtoull(seed, &end, 10);
      if (errno == 0 && *end == '\0') {
        qm_pyrandom_seed_u64(&r, s64);
        for (unsigned long long i = 0; i <= index; i++)
          got = qm_pyrandom_next32(&r);
        CHECKF(got == word, "seed_u64(%s) word %llu: got %" PRIu32 ", want %llu", seed, index,
               got, word);
      }
    }
  }
  fclose(f);
  CHECKF(rows == 40, "mt19937.tsv: %d rows, want 40", rows);
}

/* First two getrandbits(32) words of a seed text. */
static void first_words(const char *text, uint32_t out[2]) {
  struct qm_pyrandom r;
  struct qm_err err = {0};
  out[0] = out[1] = 0;
  if (qm_pyrandom_seed_text(&r, text, &err) != 0) {
    CHECKF(0, "seed_text(\"%s\") failed: %s", text, err.msg);
    return;
  }
  out[0] = qm_pyrandom_next32(&r);
  out[1] = qm_pyrandom_next32(&r);
}

/* Spot values produced with /usr/bin/python3 (3.11.2):
 *   r = random.Random(s); [r.getrandbits(32) for _ in range(2)]
 * for s in [2**64-1, 1700000000123456789, 12, 1000, 10**127-1]. */
static void test_seed_forms(void) {
  static const struct {
    const char *text;
    uint32_t w0, w1;
  } cases[] = {
      {"18446744073709551615", 93740670U, 1068495656U},
      {"1700000000123456789", 3501343795U, 2126589264U},
      {"12", 2038265566U, 1155324522U},
      {"  -12", 2038265566U, 1155324522U}, /* Python seeds with abs(n) */
      {"+12\n", 2038265566U, 1155324522U},
      {"\t\v\f\r 012 ", 2038265566U, 1155324522U},
      {"1000", 3338721356U, 1842444242U},
      {"1_000", 3338721356U, 1842444242U},
      {"-1_0_0_0", 3338721356U, 1842444242U},
      {"0", 3626764237U, 1654615998U}, /* from mt19937.tsv, seed 0 */
      {"-0", 3626764237U, 1654615998U},
      {"0_0", 3626764237U, 1654615998U},
      {"000", 3626764237U, 1654615998U},
      {"7", 1390851128U, 4071050724U}, /* from mt19937.tsv, seed 7 */
      {"9999999999999999999999999999999999999999999999999999999999999999999999999999999999999"
       "999999999999999999999999999999999999999999",
       1656505689U, 872646477U}, /* 10**127 - 1: 127 digits, the longest QM_SEED_MAX allows */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t w[2];
    first_words(cases[i].text, w);
    CHECKF(w[0] == cases[i].w0 && w[1] == cases[i].w1,
           "seed \"%s\": got %" PRIu32 " %" PRIu32 ", want %" PRIu32 " %" PRIu32,
           cases[i].text, w[0], w[1], cases[i].w0, cases[i].w1);
  }

  {
    struct qm_pyrandom r;
    qm_pyrandom_seed_u64(&r, UINT64_MAX);
    CHECKF(qm_pyrandom_next32(&r) == 93740670U, "seed_u64(2^64-1) first word");
    qm_pyrandom_seed_u64(&r, 1700000000123456789ULL);
    CHECKF(qm_pyrandom_next32(&r) == 3501343795U, "seed_u64(1700000000123456789) first word");
  }
}

/* Texts Python's int() rejects; the error names the text and |r| stays untouched. (Python
 * also accepts non-ASCII Unicode digits and spaces; seed texts here are ASCII only.) */
static void test_seed_errors(void) {
  /* ("\x1c" "7") is meant: the byte 0x1c then '7' ("\x1c7" would be one hex escape); the
   * parentheses tell clang's -Wstring-concatenation it is not a missing comma. */
  static const char *bad[] = {"",    " ",   "+",     "-",    "1__0", "_1",  "1_",
                              "+_1", "--7", "+-1",   "abc",  "7x",   "0x10", "1.0",
                              "1e3", "1 2", ("\x1c" "7"), "7\x1f"};
  char longtext[200];
  struct qm_pyrandom r, before;
  struct qm_err err;

  qm_pyrandom_seed_u64(&r, 42);
  before = r;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    qm_err_clear(&err);
    int rc = qm_pyrandom_seed_text(&r, bad[i], &err);
    CHECKF(rc < 0, "seed_text(\"%s\") accepted", bad[i]);
    CHECKF(rc == err.code, "seed_text(\"%s\") code %d, err.code %d", bad[i], rc, err.code);
    CHECKF(bad[i][0] == '\0' || strstr(err.msg, bad[i]) != NULL,
           "seed_text(\"%s\") message does not name the text: %s", bad[i], err.msg);
    CHECKF(memcmp(&r, &before, sizeof r) == 0, "seed_text(\"%s\") changed the generator",
           bad[i]);
  }

  memset(longtext, '9', sizeof longtext - 1);
  longtext[sizeof longtext - 1] = '\0';
  qm_err_clear(&err);
  CHECKF(qm_pyrandom_seed_text(&r, longtext, &err) < 0, "200-digit seed accepted");
  CHECKF(strstr(err.msg, "9999") != NULL, "long seed message does not name it: %s", err.msg);
  CHECKF(memcmp(&r, &before, sizeof r) == 0, "long seed changed the generator");
}

/* Spot values produced with /usr/bin/python3 (3.11.2):
 *   r = random.Random(7); [repr(r.random()) for _ in range(3)]
 *   r = random.Random(7); [r._randbelow(n) for n in
 *       [3, 10, 1000, 2**32-1, 2**32, 2**32+1, 2**40+7, 2**64-1]]
 *   r = random.Random(7); [r.randint(55,90), r.randint(-5,5), r.randint(0,0), r.randint(1,2)]
 *   r = random.Random(7); r.randint(-2**63, 2**63-1), r.getrandbits(32) */
static void test_draws(void) {
  static const double want_random[] = {0.32383276483316237, 0.15084917392450192,
                                       0.6509344730398537};
  static const struct {
    uint64_t n, want;
  } below[] = {
      {3, 1},
      {10, 2},
      {1000, 404},
      {4294967295ULL, 2795742288ULL},
      {4294967296ULL, 207388624ULL},
      {4294967297ULL, 404285457ULL},
      {1099511627783ULL, 127057107037ULL},
      {18446744073709551615ULL, 9360537168593968532ULL},
  };
  static const struct {
    int64_t a, b, want;
  } ints[] = {{55, 90, 75}, {-5, 5, -3}, {0, 0, 0}, {1, 2, 1}};
  struct qm_pyrandom r;

  qm_pyrandom_seed_u64(&r, 7);
  for (size_t i = 0; i < sizeof want_random / sizeof want_random[0]; i++) {
    CHECK_EQ_D(qm_pyrandom_random(&r), want_random[i]);
  }

  qm_pyrandom_seed_u64(&r, 7);
  for (size_t i = 0; i < sizeof below / sizeof below[0]; i++) {
    uint64_t got = qm_pyrandom_randbelow(&r, below[i].n);
    CHECKF(got == below[i].want, "randbelow(%" PRIu64 "): got %" PRIu64 ", want %" PRIu64,
           below[i].n, got, below[i].want);
  }

  qm_pyrandom_seed_u64(&r, 7);
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    int64_t got = qm_pyrandom_randint(&r, ints[i].a, ints[i].b);
    CHECKF(got == ints[i].want, "randint(%" PRId64 ", %" PRId64 "): got %" PRId64
           ", want %" PRId64, ints[i].a, ints[i].b, got, ints[i].want);
  }

  qm_pyrandom_seed_u64(&r, 7);
  {
    int64_t got = qm_pyrandom_randint(&r, INT64_MIN, INT64_MAX);
    uint32_t next = qm_pyrandom_next32(&r);
    CHECKF(got == INT64_C(8261657684473197624), "randint(full range): got %" PRId64, got);
    CHECKF(next == 1695753998U, "randint(full range) used the wrong number of words");
  }
}

int main(void) {
  test_mt_vectors();
  test_seed_forms();
  test_seed_errors();
  test_draws();
  return qm_checks_done();
}
