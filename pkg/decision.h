/* decision.h: the provider's decision formula (the reference's, bit-exact). Provider-only:
 * fronts and hubs never link this file. */
#ifndef QM_DECISION_H
#define QM_DECISION_H

#include <stddef.h>
#include <stdint.h>

/* qm_decision_score: HMAC-SHA256(secret, "{provider_id}|{domain}|{hex(repr)}|{context}"),
 * n = first 8 bytes big-endian, (n mod 10^7)/10^7, +0.15 when context == expected,
 * capped at 1.0. |repr| is the 32-byte request_repr; |context| is |context_len| bytes (no
 * NUL needed). Returns the score in [0, 1], or -1.0 when OpenSSL fails (out of memory), which
 * is below every threshold. */
double qm_decision_score(const uint8_t *secret, size_t secret_len, const char *provider_id,
                         const char *domain, const uint8_t repr[32], const char *context,
                         size_t context_len, const char *expected_context);

/* qm_decision_score_checked: as qm_decision_score, but returns 0 and the score in |*out|, or
 * a negative code (-ENOMEM, -EIO) when OpenSSL fails; on failure |*out| is untouched. */
int qm_decision_score_checked(const uint8_t *secret, size_t secret_len,
                              const char *provider_id, const char *domain,
                              const uint8_t repr[32], const char *context, size_t context_len,
                              const char *expected_context, double *out);

/* A scorer: one provider's secret, id and expected context, keyed once. Scoring a request
 * then costs the HMAC itself, not OpenSSL's per-call set-up (fetching, keying, copying
 * contexts), which was most of the cost. Same formula, same bits as qm_decision_score.
 * Scoring only reads the scorer: threads may share one. */
struct qm_scorer;

/* qm_scorer_new: copies every argument. 0, -ENOMEM or -EIO (OpenSSL). */
int qm_scorer_new(const uint8_t *secret, size_t secret_len, const char *provider_id,
                  const char *expected_context, struct qm_scorer **out);
/* qm_scorer_score: the score of one request; |domain| and |context| need no NUL. 0 with the
 * score in |*out|, or -EIO when OpenSSL fails (|*out| untouched). */
int qm_scorer_score(struct qm_scorer *s, const char *domain, size_t domain_len,
                    const uint8_t repr[32], const char *context, size_t context_len, double *out);
void qm_scorer_free(struct qm_scorer *s);

/* qm_decision_initiated: score >= threshold, inverted when |byzantine| and seq >= at
 * (a negative |byzantine_at| counts as "from the start"). Returns 1 or 0. */
int qm_decision_initiated(double score, double threshold, int byzantine, uint64_t sequence,
                          int64_t byzantine_at);

#endif
