/* reflection.h: grpc.reflection.v1 and v1alpha ServerReflection from the embedded
 * descriptor set, so grpcurl can list, describe and call every service. */
#ifndef QM_REFLECTION_H
#define QM_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

struct qm_reflection;

/* qm_reflection_mount: registers both reflection services on |srv| (before start); the
 * listed services are the server's own. Returns 0 or a negative code. */
int qm_reflection_mount(struct qm_server *srv, struct qm_reflection **out);
void qm_reflection_free(struct qm_reflection *r);

/* qm_reflection_answer: one ServerReflectionRequest in, the packed response out (malloc'd,
 * *out untouched on failure). |services| are the names list_services returns. Returns 0,
 * or -EINVAL for a request that does not decode. Exposed for tests and the fuzzer. */
int qm_reflection_answer(const uint8_t *req, size_t len, const char *const *services,
                         size_t nservices, uint8_t **out, size_t *out_len);

#endif
