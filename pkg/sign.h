/* sign.h: Ed25519 keys, signatures over exact bytes. Providers sign; the auditor verifies
 * with public keys only. Fronts and hubs never link this file. */
#ifndef QM_SIGN_H
#define QM_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define QM_SIG_LEN 64

struct qm_key; /* opaque: the raw Ed25519 key */

/* qm_key_load_private / qm_key_load_public: a PEM file. Returns 0 or a negative code with
 * the path in |err|; |*out| untouched on failure. */
int qm_key_load_private(const char *path, struct qm_key **out, struct qm_err *err);
int qm_key_load_public(const char *path, struct qm_key **out, struct qm_err *err);
/* qm_key_generate: writes "<dir>/<id>.key" (0600) and "<dir>/<id>.pub". */
int qm_key_generate(const char *dir, const char *id, struct qm_err *err);
void qm_key_free(struct qm_key *k);

/* qm_sign: Ed25519 over |msg|. Returns 0 or -EIO. qm_sign and qm_verify only read the key:
 * several threads may use one key at once. */
int qm_sign(const struct qm_key *k, const uint8_t *msg, size_t len, uint8_t sig[QM_SIG_LEN]);
/* qm_verify: 1 when |sig| is |k|'s signature over |msg|, else 0. */
int qm_verify(const struct qm_key *k, const uint8_t *msg, size_t len, const uint8_t *sig,
              size_t sig_len);

#endif
