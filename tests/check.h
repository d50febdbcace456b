/* check.h: the tiny assertion kit of the C unit tests: count, report, close with the line
 * "N passed, M failed" that ctest's output and CI read. Failures are told on stderr. */
#ifndef QM_CHECK_H
#define QM_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int qm_checks_passed, qm_checks_failed;

/* qm_xorshift: one step of xorshift64*, the tests' reproducible source of random inputs. */
static inline uint64_t qm_xorshift(uint64_t *state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return *state * 2685821657736338717u;
}

/* qm_check_failed_: counts one check; true when it failed (the caller then says why). */
static inline int qm_check_failed_(int ok) {
  if (ok)
    qm_checks_passed++;
  else
    qm_checks_failed++;
  return !ok;
}

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (qm_check_failed_(!!(cond)))                                                  \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
  } while (0)

/* CHECKF(cond, fmt, ...): CHECK with a printf-style message, whose arguments are evaluated
 * only when |cond| is false. CHECKF_AT reports |file|:|line| instead of its own place, for
 * helpers that check on behalf of their caller. */
#define CHECKF(cond, ...) QM_CHECKF_(__FILE__, __LINE__, cond, #cond, __VA_ARGS__)
#define CHECKF_AT(file, line, cond, ...) QM_CHECKF_(file, line, cond, #cond, __VA_ARGS__)
#define QM_CHECKF_(file, line, cond, text, ...)                                      \
  do {                                                                               \
    if (qm_check_failed_(!!(cond))) {                                                \
      fprintf(stderr, "%s:%d: check failed: %s: ", (file), (line), (text));          \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fputc('\n', stderr);                                                           \
    }                                                                                \
  } while (0)

#define CHECK_EQ_U(got, want)                                                        \
  do {                                                                               \
    unsigned long long g_ = (unsigned long long)(got), w_ = (unsigned long long)(want); \
    if (qm_check_failed_(g_ == w_))                                                  \
      fprintf(stderr, "%s:%d: %s = %llu, want %llu\n", __FILE__, __LINE__, #got, g_, w_); \
  } while (0)

/* CHECK_EQ_S: equal C strings (a NULL on either side fails). */
#define CHECK_EQ_S(got, want)                                                        \
  do {                                                                               \
    const char *g_ = (got), *w_ = (want);                                            \
    if (qm_check_failed_(g_ && w_ && strcmp(g_, w_) == 0))                           \
      fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__, #got, \
              g_ ? g_ : "(null)", w_ ? w_ : "(null)");                               \
  } while (0)

/* CHECK_EQ_D: exactly equal doubles (values reproduced bit for bit), shown with %.17g. */
#define CHECK_EQ_D(got, want)                                                        \
  do {                                                                               \
    double g_ = (got), w_ = (want);                                                  \
    if (qm_check_failed_(g_ == w_))                                                  \
      fprintf(stderr, "%s:%d: %s = %.17g, want %.17g\n", __FILE__, __LINE__, #got, g_, w_); \
  } while (0)

static inline int qm_checks_done(void) {
  printf("%d passed, %d failed\n", qm_checks_passed, qm_checks_failed);
  return qm_checks_failed ? 1 : 0;
}

#endif
