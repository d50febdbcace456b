/* rpc_sync_channel.h: a persistent channel for blocking unary calls from threads that are
 * not an event loop (the HTTP side of a role calls its own gRPC server through one). */
#ifndef QM_RPC_SYNC_CHANNEL_H
#define QM_RPC_SYNC_CHANNEL_H

#include <stddef.h>

#include "err.h"
#include "rpc.h"

struct qm_sync_channel;

/* qm_sync_channel_new: a channel to |target| ("host:port", copied), with the process'
 * credentials (insecure, or mutual TLS once configured: then the server must present the
 * certificate of |server_id|, or of the target's host when NULL). Connects lazily on the
 * first call. Returns 0, or a negative code with the target in |err|; on failure |*out| is
 * untouched. */
int qm_sync_channel_new(const char *target, const char *server_id, struct qm_sync_channel **out,
                        struct qm_err *err);

/* qm_sync_channel_call: one unary call to |path| with |req| and |md| (both copied), blocking
 * the calling thread until it completes or |timeout_ms| passes. Thread-safe: any number of
 * threads may call at once (each call has its own completion queue; they share the channel
 * and its connection). At most 8 metadata entries. Returns 0 when the call completed (any
 * status, see |res|; free res->resp), a negative code when it could not be started. */
int qm_sync_channel_call(struct qm_sync_channel *ch, const char *path, const uint8_t *req,
                         size_t len, const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                         int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err);

const char *qm_sync_channel_target(const struct qm_sync_channel *ch);

/* qm_sync_channel_free: when no call is in progress on it; before qm_rpc_shutdown. NULL-safe. */
void qm_sync_channel_free(struct qm_sync_channel *ch);

#endif
