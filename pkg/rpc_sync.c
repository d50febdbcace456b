/* rpc_sync.c: one blocking unary call on a channel of its own, for command-line tools. */
#include "rpc_sync_channel.h"

int qm_rpc_call_sync(const char *target, const char *path, const uint8_t *req, size_t len,
                     const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                     int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err) {
  return qm_rpc_call_sync_id(target, NULL, path, req, len, md, nmd, timeout_ms, wait_for_ready, res, err);
}

int qm_rpc_call_sync_id(const char *target, const char *server_id, const char *path, const uint8_t *req,
                        size_t len, const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                        int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err) {
  struct qm_sync_channel *ch = NULL;
  int rc = qm_sync_channel_new(target, server_id, &ch, err);
  if (rc) return rc;
  rc = qm_sync_channel_call(ch, path, req, len, md, nmd, timeout_ms, wait_for_ready, res, err);
  qm_sync_channel_free(ch);
  return rc;
}
