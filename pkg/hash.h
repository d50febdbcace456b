/* hash.h: SHA-256 and hex, the only crypto a front needs (no keys, no signatures). */
#ifndef QM_HASH_H
#define QM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define QM_SHA256_LEN 32

/* qm_sha256: |out| = SHA-256(data). Returns 0 or -EIO. */
int qm_sha256(const void *data, size_t len, uint8_t out[QM_SHA256_LEN]);
/* qm_sha256_parts: |out| = SHA-256 of the |n| parts concatenated, without copying them
 * together. Returns 0 or -EIO. */
int qm_sha256_parts(const void *const *parts, const size_t *lens, size_t n, uint8_t out[QM_SHA256_LEN]);
/* qm_hex: lower-case hex of |len| bytes into |out| (2*len+1 bytes). */
void qm_hex(const uint8_t *bytes, size_t len, char *out);
/* qm_unhex: parses exactly 2*len hex digits; returns 0 or -EINVAL. */
int qm_unhex(const char *hex, uint8_t *out, size_t len);

#endif
