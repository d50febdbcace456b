/* rpc_sync_channel.c: blocking unary calls on one persistent channel, from any thread. */
#include "rpc_sync_channel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

#define QM_SYNC_MD_MAX 8

struct qm_sync_channel {
  grpc_channel *channel;
  char *target;
};

int qm_sync_channel_new(const char *target, const char *server_id, struct qm_sync_channel **out,
                        struct qm_err *err) {
  struct qm_sync_channel *ch = calloc(1, sizeof *ch);
  if (!ch) return qm_err_set(err, -ENOMEM, "out of memory");
  ch->target = strdup(target);
  if (!ch->target) {
    free(ch);
    return qm_err_set(err, -ENOMEM, "out of memory");
  }
  ch->channel = qm__channel_create(target, server_id);
  if (!ch->channel) {
    free(ch->target);
    free(ch);
    return qm_err_set(err, -EINVAL, "cannot create a channel to %s", target);
  }
  *out = ch;
  return 0;
}

const char *qm_sync_channel_target(const struct qm_sync_channel *ch) { return ch->target; }

int qm_sync_channel_call(struct qm_sync_channel *ch, const char *path, const uint8_t *req,
                         size_t len, const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                         int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err) {
  grpc_metadata gmd[QM_SYNC_MD_MAX];
  memset(res, 0, sizeof *res);
  if (nmd > QM_SYNC_MD_MAX) return qm_err_set(err, -E2BIG, "%zu metadata entries, at most %d", nmd, QM_SYNC_MD_MAX);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!cq) return qm_err_set(err, -ENOMEM, "cannot create a completion queue");
  grpc_slice method = grpc_slice_from_copied_string(path);
  grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                             qm__deadline_ms(timeout_ms), NULL);
  grpc_slice_unref(method);
  for (size_t i = 0; i < nmd; i++) {
    gmd[i].key = grpc_slice_from_copied_string(md[i].key);
    gmd[i].value = grpc_slice_from_copied_buffer(md[i].value, md[i].value_len);
  }
  grpc_metadata_array init_md, trail_md;
  grpc_metadata_array_init(&init_md);
  grpc_metadata_array_init(&trail_md);
  grpc_byte_buffer *send_bb = qm__buffer_from(req, len), *recv_bb = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = nmd;
  ops[0].data.send_initial_metadata.metadata = nmd ? gmd : NULL;
  ops[0].flags = wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  int rc = 0, tag;
  grpc_call_error ce = call ? grpc_call_start_batch(call, ops, 6, &tag, NULL) : GRPC_CALL_ERROR;
  if (ce != GRPC_CALL_OK) {
    /* e.g. GRPC_CALL_ERROR_INVALID_METADATA for a value that is not printable ASCII */
    rc = qm_err_set(err, ce == GRPC_CALL_ERROR_INVALID_METADATA ? -EINVAL : -EIO,
                    "cannot start a call to %s%s (grpc_call_error %d)", ch->target, path, (int)ce);
    goto cleanup;
  }
  grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  res->status = ev.success ? (int)status : QM_STATUS_UNAVAILABLE;
  size_t n = GRPC_SLICE_LENGTH(details);
  if (n >= sizeof res->details) n = sizeof res->details - 1;
  memcpy(res->details, GRPC_SLICE_START_PTR(details), n);
  res->details[n] = '\0';
  if (res->status == QM_STATUS_OK && recv_bb && qm__buffer_read(recv_bb, &res->resp, &res->len) != 0)
    rc = qm_err_set(err, -ENOMEM, "cannot read the reply from %s%s", ch->target, path);
cleanup:
  grpc_byte_buffer_destroy(send_bb);
  if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
  grpc_metadata_array_destroy(&init_md);
  grpc_metadata_array_destroy(&trail_md);
  grpc_slice_unref(details);
  for (size_t i = 0; i < nmd; i++) {
    grpc_slice_unref(gmd[i].key);
    grpc_slice_unref(gmd[i].value);
  }
  if (call) grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  return rc;
}

void qm_sync_channel_free(struct qm_sync_channel *ch) {
  if (!ch) return;
  grpc_channel_destroy(ch->channel);
  free(ch->target);
  free(ch);
}
