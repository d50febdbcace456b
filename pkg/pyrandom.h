/* pyrandom.h: Python 3's `random` (MT19937 seeded by init_by_array), bit-exact. */
#ifndef QM_PYRANDOM_H
#define QM_PYRANDOM_H

#include <stdint.h>

#include "err.h"

struct qm_pyrandom {
  uint32_t mt[624];
  int index;
};

/* qm_pyrandom_seed_u64: random.seed(n) for 0 <= n < 2^64 (key = n's 32-bit words, least
 * significant first; [0] for zero). */
void qm_pyrandom_seed_u64(struct qm_pyrandom *r, uint64_t n);

/* qm_pyrandom_seed_text: random.seed(int(text)) for any decimal integer text Python's int()
 * accepts ("  -12", "+7", "1_000"); Python seeds with abs(n). Returns 0, or a negative code
 * naming the text in |err| (|r| untouched on failure). */
int qm_pyrandom_seed_text(struct qm_pyrandom *r, const char *text, struct qm_err *err);

uint32_t qm_pyrandom_next32(struct qm_pyrandom *r);        /* getrandbits(32) */
double qm_pyrandom_random(struct qm_pyrandom *r);          /* random() */
uint64_t qm_pyrandom_randbelow(struct qm_pyrandom *r, uint64_t n); /* _randbelow(n), n >= 1 */
int64_t qm_pyrandom_randint(struct qm_pyrandom *r, int64_t a, int64_t b); /* a <= b */

#endif
