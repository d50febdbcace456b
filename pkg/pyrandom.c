/* pyrandom.c: Python 3's `random` (MT19937 seeded by init_by_array), bit-exact. */
#include "pyrandom.h"

#include <errno.h>
#include <string.h>

#include "topology.h" /* QM_SEED_MAX */

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfU
#define MT_UPPER_MASK 0x80000000U
#define MT_LOWER_MASK 0x7fffffffU

/* Enough 32-bit words for any decimal text shorter than QM_SEED_MAX:
 * digits * log2(10) / 32 < QM_SEED_MAX * 0.104, rounded up generously. */
#define SEED_WORDS_MAX (QM_SEED_MAX / 8 + 2)

static void init_genrand(struct qm_pyrandom *r, uint32_t s) {
  r->mt[0] = s;
  for (int i = 1; i < MT_N; i++)
    r->mt[i] = 1812433253U * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
  r->index = MT_N;
}

/* init_by_array: Python's random_seed() with |key| the seed's words, least significant
 * first (|len| >= 1). */
static void init_by_array(struct qm_pyrandom *r, const uint32_t *key, size_t len) {
  uint32_t *mt = r->mt;
  size_t i = 1, j = 0;
  init_genrand(r, 19650218U);
  for (size_t k = MT_N > len ? MT_N : len; k; k--) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525U)) + key[j] + (uint32_t)j;
    i++;
    j++;
    if (i >= MT_N) {
      mt[0] = mt[MT_N - 1];
      i = 1;
    }
    if (j >= len)
      j = 0;
  }
  for (size_t k = MT_N - 1; k; k--) {
    mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
    i++;
    if (i >= MT_N) {
      mt[0] = mt[MT_N - 1];
      i = 1;
    }
  }
  mt[0] = 0x80000000U;
  r->index = MT_N;
}

void qm_pyrandom_seed_u64(struct qm_pyrandom *r, uint64_t n) {
  uint32_t key[2] = {(uint32_t)n, (uint32_t)(n >> 32)};
  init_by_array(r, key, key[1] ? 2 : 1);
}

static int is_py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int qm_pyrandom_seed_text(struct qm_pyrandom *r, const char *text, struct qm_err *err) {
  uint8_t digits[QM_SEED_MAX];
  uint32_t key[SEED_WORDS_MAX];
  size_t ndigits = 0, nkey = 0, len, b, e;

  if (!text)
    return qm_err_set(err, -EINVAL, "random seed: missing text");
  len = strnlen(text, QM_SEED_MAX);
  if (len >= QM_SEED_MAX)
    return qm_err_set(err, -ERANGE, "random seed \"%.32s...\": longer than %d characters",
                      text, QM_SEED_MAX - 1);

  /* int(): strip whitespace, one optional sign, digits with single '_' between digits. */
  b = 0;
  e = len;
  while (b < e && is_py_space(text[b]))
    b++;
  while (e > b && is_py_space(text[e - 1]))
    e--;
  if (b < e && (text[b] == '+' || text[b] == '-'))
    b++; /* Python seeds with abs(n): the sign does not matter */
  if (b == e || !is_digit(text[b]) || !is_digit(text[e - 1]))
    goto bad;
  for (size_t i = b; i < e; i++) {
    if (is_digit(text[i]))
      digits[ndigits++] = (uint8_t)(text[i] - '0');
    else if (text[i] != '_' || !is_digit(text[i + 1]))
      goto bad; /* the previous character is a digit: text[b] is one, and "__" stops here */
  }

  /* Repeated long division of the decimal digits by 2^32; remainders are the key words,
   * least significant first. Leading zero digits are skipped as the quotient shrinks. */
  {
    size_t start = 0;
    while (start < ndigits && digits[start] == 0)
      start++;
    while (start < ndigits) {
      uint64_t rem = 0;
      for (size_t i = start; i < ndigits; i++) {
        uint64_t cur = rem * 10 + digits[i];
        digits[i] = (uint8_t)(cur >> 32); /* cur < 2^36: the quotient digit is 0..9 */
        rem = cur & 0xffffffffU;
      }
      if (nkey == SEED_WORDS_MAX) /* cannot happen for texts shorter than QM_SEED_MAX */
        return qm_err_set(err, -ERANGE, "random seed \"%s\": too large", text);
      key[nkey++] = (uint32_t)rem;
      while (start < ndigits && digits[start] == 0)
        start++;
    }
  }
  if (nkey == 0)
    key[nkey++] = 0; /* random.seed(0): key [0] */
  init_by_array(r, key, nkey);
  return 0;

bad:
  return qm_err_set(err, -EINVAL,
                    "random seed \"%s\": not a decimal integer (Python int() syntax)", text);
}

uint32_t qm_pyrandom_next32(struct qm_pyrandom *r) {
  static const uint32_t mag01[2] = {0x0U, MT_MATRIX_A};
  uint32_t *mt = r->mt;
  uint32_t y;

  if (r->index >= MT_N) {
    int kk;
    for (kk = 0; kk < MT_N - MT_M; kk++) {
      y = (mt[kk] & MT_UPPER_MASK) | (mt[kk + 1] & MT_LOWER_MASK);
      mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    for (; kk < MT_N - 1; kk++) {
      y = (mt[kk] & MT_UPPER_MASK) | (mt[kk + 1] & MT_LOWER_MASK);
      mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 0x1U];
    }
    y = (mt[MT_N - 1] & MT_UPPER_MASK) | (mt[0] & MT_LOWER_MASK);
    mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
    r->index = 0;
  }
  y = mt[r->index++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

double qm_pyrandom_random(struct qm_pyrandom *r) {
  uint32_t a = qm_pyrandom_next32(r) >> 5, b = qm_pyrandom_next32(r) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* getrandbits(k) for 1 <= k <= 64: Python fills 32-bit words least significant first and
 * shifts only the last (most significant) word down to the bits it still needs. */
static uint64_t getrandbits(struct qm_pyrandom *r, unsigned k) {
  uint64_t v;
  if (k <= 32)
    return qm_pyrandom_next32(r) >> (32 - k);
  v = qm_pyrandom_next32(r);
  return v | (uint64_t)(qm_pyrandom_next32(r) >> (64 - k)) << 32;
}

uint64_t qm_pyrandom_randbelow(struct qm_pyrandom *r, uint64_t n) {
  unsigned k = 0;
  uint64_t v;
  if (n == 0)
    return 0; /* outside the contract (n >= 1): no draw */
  for (v = n; v; v >>= 1)
    k++;
  do
    v = getrandbits(r, k);
  while (v >= n);
  return v;
}

int64_t qm_pyrandom_randint(struct qm_pyrandom *r, int64_t a, int64_t b) {
  /* b - a + 1 in unsigned arithmetic: exact for every a <= b except the full 2^64 range. */
  uint64_t width = (uint64_t)b - (uint64_t)a + 1;
  if (width == 0) { /* a = INT64_MIN, b = INT64_MAX: _randbelow(2^64) draws getrandbits(65) */
    uint64_t v;
    uint32_t top;
    do {
      v = getrandbits(r, 64);
      top = qm_pyrandom_next32(r) >> 31;
    } while (top);
    return (int64_t)((uint64_t)a + v);
  }
  return (int64_t)((uint64_t)a + qm_pyrandom_randbelow(r, width));
}
