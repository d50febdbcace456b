/* check.h: the tiny assertion kit of the C unit tests: count, report, close with the line
 * "N passed, M failed" that ctest's output and CI read. */
#ifndef QM_CHECK_H
#define QM_CHECK_H

#include <stdio.h>

static int qm_checks_passed, qm_checks_failed;

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (cond) {                                                          \
      qm_checks_passed++;                                                \
    } else {                                                             \
      qm_checks_failed++;                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                    \
  } while (0)

#define CHECK_EQ_U(got, want)                                                              \
  do {                                                                                     \
    unsigned long long g_ = (unsigned long long)(got), w_ = (unsigned long long)(want);    \
    if (g_ == w_) {                                                                        \
      qm_checks_passed++;                                                                  \
    } else {                                                                               \
      qm_checks_failed++;                                                                  \
      fprintf(stderr, "%s:%d: %s = %llu, want %llu\n", __FILE__, __LINE__, #got, g_, w_);  \
    }                                                                                      \
  } while (0)

static inline int qm_checks_done(void) {
  printf("%d passed, %d failed\n", qm_checks_passed, qm_checks_failed);
  return qm_checks_failed ? 1 : 0;
}

#endif
