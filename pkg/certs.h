/* certs.h: a private CA and one certificate per instance for the mesh's mutual TLS. The
 * certificate's identity (subject CN and DNS subject alternative name) is the instance id,
 * which is what peer authorization checks. */
#ifndef QM_CERTS_H
#define QM_CERTS_H

#include <stddef.h>

#include "err.h"

/* qm_certs_make: writes |dir|/ca.crt, ca.key and, for each of |ids|, <id>.crt and <id>.key
 * (ECDSA P-256, keys 0600), valid for |days|. An existing ca.crt/ca.key pair in |dir| is
 * reused so that new instances join the same CA. Returns 0 or a negative code with |err|. */
int qm_certs_make(const char *dir, const char *const *ids, size_t n, unsigned days, struct qm_err *err);

#endif
